"""``analyze`` and ``check``: one-off analysis of photos, no database needed."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import typer

from shelfwatch.cli.common import fail, friendly_errors, segmenter_for, settings
from shelfwatch.core.errors import BadInputError
from shelfwatch.core.imageio import load_image
from shelfwatch.pipeline import FixtureContext, analyze
from shelfwatch.planogram.compliance import check_compliance
from shelfwatch.planogram.formats import read_catalog, read_planogram
from shelfwatch.planogram.sku import load_signatures
from shelfwatch.vision.annotate import render_overlay
from shelfwatch.vision.registry import get_segmenter


def _context(catalog: Path | None, width_cm: float | None) -> FixtureContext:
    if catalog is None:
        return FixtureContext(width_cm=width_cm)
    items = read_catalog(catalog)
    return FixtureContext(
        width_cm=width_cm,
        catalog={i.sku: i for i in items},
        signatures=load_signatures(catalog.parent, items),
        catalog_dir=catalog.parent,
    )


def _analyze_capture(
    paths: list[Path],
    segmenter,  # type: ignore[no-untyped-def]
    context: FixtureContext,
    as_json: bool,
    overlay: Path | None,
    prompt: str | None = None,
) -> None:
    """One capture: one record per fixture it shows (one, unless views do not overlap)."""
    from shelfwatch.capture import analyze_capture, load_frames

    name = str(paths[0]) if len(paths) == 1 else f"{paths[0]}..{paths[-1].name}"
    frames = load_frames(paths)
    results = analyze_capture(frames, segmenter, context, prompt)
    if len(results) > 1:
        parts = "; ".join(f"frames {r.frames_used[0]}-{r.frames_used[-1]}" for r in results)
        typer.echo(
            f"warning: {name}: views that do not overlap: {len(results)} fixtures ({parts})",
            err=True,
        )
    for n, result in enumerate(results, start=1):
        label = name if len(results) == 1 else f"{name}#{n}"
        if overlay is not None:
            overlay.mkdir(parents=True, exist_ok=True)
            stem = paths[0].stem + ("" if len(results) == 1 else f"-{n}")
            cv2.imwrite(str(overlay / f"{stem}.png"), render_overlay(result.image, result.scene))
        if as_json:
            typer.echo(json.dumps(result.to_json(label)))
        else:
            counts = result.scene.counts()
            typer.echo(
                f"{label}: {len(result.frames_used)} frames, fixture "
                f"{result.scene.width}x{result.scene.height}, {len(result.scene.shelves)} "
                f"shelves, {counts['products']} products, {counts['gaps']} gaps"
            )


def _write_overlay(overlay: Path, image_path: Path, image, scene) -> Path:  # type: ignore[no-untyped-def]
    overlay.mkdir(parents=True, exist_ok=True)
    out = overlay / f"{image_path.stem}.png"
    cv2.imwrite(str(out), render_overlay(image, scene))
    return out


@friendly_errors
def analyze_cmd(
    images: list[Path] = typer.Argument(..., help="Photos to analyse."),
    backend: str = typer.Option(
        None, "--backend", help="Segmentation backend (default: settings)."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per image per line."),
    overlay: Path = typer.Option(None, "--overlay", help="Write an overlay PNG per image here."),
    catalog: Path = typer.Option(
        None, "--catalog", help="Catalog CSV: label SKUs by its reference images."
    ),
    width_cm: float = typer.Option(
        None, "--fixture-width-cm", help="Fixture width, for gap sizes in cm."
    ),
    model: Path = typer.Option(
        None, "--model", help="The backend's weights: a train --out folder or a checkpoint."
    ),
    capture: bool = typer.Option(
        False, "--capture", help="The photos are one capture: overlapping views of one fixture."
    ),
    prompt: str = typer.Option(
        None,
        "--prompt",
        help="With a capture and a referring backend (clipseg): this text's masks in every "
        "chosen frame, linked by track id.",
    ),
) -> None:
    """Segment shelf photos: shelves, products (with masks), gaps and counts. A video, or
    photos given with --capture, is one capture of a fixture: one record for all frames."""
    from shelfwatch.vision.video import is_video

    segmenter = segmenter_for(backend, model)
    context = _context(catalog, width_cm)
    videos = [p for p in images if is_video(p)]
    if capture or videos:
        groups = [[v] for v in videos] if not capture else [images]
        if not capture and len(videos) != len(images):
            raise fail("give videos, or photos (one capture with --capture), not both")
        for group in groups:
            _analyze_capture(group, segmenter, context, as_json, overlay, prompt)
        return
    if prompt is not None:
        raise fail("--prompt works on captures: give a video, or photos with --capture")
    failures = 0
    for path in images:
        try:
            image = load_image(path)
        except BadInputError as exc:
            typer.echo(f"error: {exc}", err=True)
            failures += 1
            continue
        scene = analyze(image, segmenter, context)
        if overlay is not None:
            _write_overlay(overlay, path, image, scene)
        if as_json:
            typer.echo(json.dumps(scene.to_json(str(path))))
        else:
            counts = scene.counts()
            reasons = scene.quality.get("reasons") or []
            flag = (
                f"  (retake: {', '.join(reasons)})"
                if reasons
                else "  (low confidence)"
                if scene.quality.get("low_confidence")
                else ""
            )
            typer.echo(
                f"{path}: {len(scene.shelves)} shelves, {counts['products']} products, "
                f"{counts['gaps']} gaps{flag}"
            )
    if failures:
        raise typer.Exit(1)


@friendly_errors
def check_cmd(
    image: Path = typer.Argument(..., help="Photo of one fixture."),
    planogram: Path = typer.Option(..., "--planogram", help="Planogram CSV or JSON."),
    catalog: Path = typer.Option(..., "--catalog", help="Catalog CSV or JSON."),
    fixture: str = typer.Option(..., "--fixture", help="Fixture code in the planogram."),
    backend: str = typer.Option(None, "--backend", help="Segmentation backend."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON (last line)."),
    width_cm: float = typer.Option(None, "--fixture-width-cm", help="Fixture width in cm."),
    overlay: Path = typer.Option(None, "--overlay", help="Write an overlay PNG here."),
) -> None:
    """Check one photo against a planogram: findings and KPIs, no database needed."""
    context = _context(catalog, width_cm)
    all_rows = read_planogram(planogram, context.catalog)
    rows = [r for r in all_rows if r.fixture == fixture]
    warnings = []
    if not rows:
        known = ", ".join(sorted({r.fixture for r in all_rows}))
        warnings.append(
            f"fixture {fixture!r} is not in {planogram} (it has: {known}); "
            "every product is reported against an empty planogram"
        )
    names = sorted({r.planogram for r in rows})
    if len(names) > 1:
        warnings.append(f"several planograms for fixture {fixture!r}; used {names[0]!r}")
    rows = [r for r in rows if r.planogram == names[0]] if names else []
    missing_refs = sorted({r.sku for r in rows if not context.catalog[r.sku].reference_image})
    if missing_refs:
        warnings.append(
            f"no reference image for {', '.join(missing_refs)}: these SKUs cannot "
            "be recognised by appearance and may show as missing"
        )
    context.planogram = rows
    img = load_image(image)
    scene = analyze(img, get_segmenter(backend or settings().backend), context)
    if overlay is not None:
        _write_overlay(overlay, image, img, scene)
    report = check_compliance(scene, rows, context.catalog)
    report.warnings[:0] = warnings + scene.warnings
    if as_json:
        typer.echo(json.dumps(report.to_json(str(image))))
        return
    k = report.kpis
    typer.echo(
        f"{image}: OSA {k['osa_pct']}%, compliance strict {k['compliance_strict_pct']}% / "
        f"lenient {k['compliance_lenient_pct']}%, facings {k['facings_compliance_pct']}%"
    )
    for f in report.findings:
        typer.echo(
            f"  shelf {f.shelf} pos {f.position}: {f.type} expected={f.expected_sku} "
            f"observed={f.observed_sku}"
        )
    for w in report.warnings:
        typer.echo(f"warning: {w}", err=True)
