"""Planogram compliance: align planned and observed shelves, list findings, compute KPIs.

Alignment per shelf is a sequence alignment over SKU runs (longest common subsequence with
adjacent transpositions), so a block that shifted left or right still matches and two
swapped blocks are reported as misplaced rather than as missing plus extra.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field

from shelfwatch.core.scene import PLANOGRAM, ShelfScene
from shelfwatch.planogram.formats import CatalogItem, PlanogramPosition, expected_layout
from shelfwatch.planogram.realogram import Run, realogram, realogram_json, runs

FINDING_TYPES = (
    "missing",
    "facings_short",
    "facings_over",
    "misplaced",
    "extra",
    "unknown_product",
)
# Rough fix effort: an empty slot costs sales, a wrong count or place less so.
IMPACT = {
    "missing": 3.0,
    "misplaced": 2.0,
    "facings_short": 1.5,
    "extra": 1.0,
    "facings_over": 0.5,
    "unknown_product": 0.5,
}


@dataclass(frozen=True)
class Finding:
    type: str
    shelf: int
    position: int | None
    expected_sku: str | None
    observed_sku: str | None
    bbox: tuple[int, int, int, int] | None = None
    expected_facings: int | None = None
    observed_facings: int | None = None

    @property
    def impact(self) -> float:
        return IMPACT[self.type]

    def to_json(self) -> dict[str, object]:
        d = asdict(self)
        d["bbox"] = list(self.bbox) if self.bbox else None
        return d


@dataclass
class ComplianceReport:
    kpis: dict[str, object]
    findings: list[Finding]
    realogram: list[dict[str, object]]
    warnings: list[str] = field(default_factory=list)

    def to_json(self, image: str | None = None) -> dict[str, object]:
        out: dict[str, object] = {}
        if image is not None:
            out["image"] = image
        out.update(
            {
                "compliance": self.kpis,
                "findings": [f.to_json() for f in self.findings],
                "realogram": self.realogram,
                "warnings": self.warnings,
            }
        )
        return out


@dataclass(frozen=True)
class Alignment:
    matched: list[tuple[int, int]]
    transposed: list[tuple[int, int, int, int]]  # expected a, b and observed a, b (swapped)
    unmatched_expected: list[int]
    unmatched_observed: list[int]


def align(expected: list[str], observed: list[str | None]) -> Alignment:
    """Align planned SKU blocks with observed runs (None = unknown never matches)."""
    n, m = len(expected), len(observed)
    score = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            best = max(score[i - 1][j], score[i][j - 1])
            if expected[i - 1] == observed[j - 1]:
                best = max(best, score[i - 1][j - 1] + 2)
            if (
                i >= 2
                and j >= 2
                and expected[i - 2] != expected[i - 1]
                and expected[i - 2] == observed[j - 1]
                and expected[i - 1] == observed[j - 2]
            ):
                best = max(best, score[i - 2][j - 2] + 3)
            score[i][j] = best
    matched, transposed, un_e, un_o = [], [], [], []
    i, j = n, m
    while i > 0 and j > 0:
        if expected[i - 1] == observed[j - 1] and score[i][j] == score[i - 1][j - 1] + 2:
            matched.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif (
            i >= 2
            and j >= 2
            and expected[i - 2] != expected[i - 1]
            and expected[i - 2] == observed[j - 1]
            and expected[i - 1] == observed[j - 2]
            and score[i][j] == score[i - 2][j - 2] + 3
        ):
            transposed.append((i - 2, i - 1, j - 2, j - 1))
            i, j = i - 2, j - 2
        elif score[i][j] == score[i - 1][j]:
            un_e.append(i - 1)
            i -= 1
        else:
            un_o.append(j - 1)
            j -= 1
    un_e += list(range(i))
    un_o += list(range(j))
    return Alignment(sorted(matched), sorted(transposed), sorted(un_e), sorted(un_o))


def _gap_near(
    scene: ShelfScene, shelf: int, left: float, right: float
) -> tuple[int, int, int, int] | None:
    for g in scene.gaps:
        centre = (g.bbox[0] + g.bbox[2]) / 2
        if g.shelf == shelf and left <= centre <= right:
            return g.bbox
    return None


def check_compliance(
    scene: ShelfScene,
    planogram: list[PlanogramPosition],
    catalog: dict[str, CatalogItem] | None = None,
) -> ComplianceReport:
    """Findings and KPIs of one photo of a fixture against its planogram."""
    catalog = catalog or {}
    layout = expected_layout(planogram)
    widths = {sku: float(c.width_cm) for sku, c in catalog.items() if c.width_cm}
    observed = realogram(scene, widths)
    warnings: list[str] = []
    if len(scene.shelves) != len(layout):
        warnings.append(
            f"photo shows {len(scene.shelves)} shelves, planogram has "
            f"{len(layout)}; compared shelf by shelf from the top"
        )
    findings: list[Finding] = []
    placed: dict[int, dict[int, str]] = defaultdict(dict)  # shelf -> position -> status
    leftovers: list[tuple[int, Run, int | None]] = []
    missing_candidates: list[tuple[int, PlanogramPosition, tuple | None]] = []
    planned_skus = {p.sku for p in planogram}
    observed_facings: dict[str | None, int] = defaultdict(int)
    all_shelves = sorted(set(layout) | set(observed))
    for shelf in all_shelves:
        plan = layout.get(shelf, [])
        seen = runs(observed.get(shelf, []))
        for r in seen:
            observed_facings[r.sku] += r.facings
        known = [(k, r) for k, r in enumerate(seen) if r.sku is not None]
        al = align([p.sku for p in plan], [r.sku for _, r in known])
        for ei, oj in al.matched:
            p, r = plan[ei], known[oj][1]
            placed[shelf][p.position] = "strict" if r.facings == p.facings else "lenient"
            if r.facings != p.facings:
                kind = "facings_short" if r.facings < p.facings else "facings_over"
                findings.append(
                    Finding(kind, shelf, p.position, p.sku, r.sku, r.bbox, p.facings, r.facings)
                )
        for ea, eb, oa, ob in al.transposed:
            # Blocks a and b traded places: each planned slot holds the other's SKU.
            pa, pb = plan[ea], plan[eb]
            ra, rb = known[ob][1], known[oa][1]  # where a and b were actually seen
            for p, r, other in ((pa, ra, pb.sku), (pb, rb, pa.sku)):
                placed[shelf][p.position] = "lenient"
                findings.append(
                    Finding(
                        "misplaced", shelf, p.position, p.sku, other, r.bbox, p.facings, r.facings
                    )
                )
        matched_obs = {known[o][0] for _, o in al.matched} | {
            known[o][0] for t in al.transposed for o in t[2:]
        }
        for ei in al.unmatched_expected:
            p = plan[ei]
            prev_x = max((known[o][1].bbox[2] for e, o in al.matched if e < ei), default=0)
            next_x = min(
                (known[o][1].bbox[0] for e, o in al.matched if e > ei), default=scene.width
            )
            missing_candidates.append((shelf, p, _gap_near(scene, shelf, prev_x, next_x)))
        for k, r in enumerate(seen):
            if k in matched_obs:
                continue
            if r.sku is None:
                findings.append(
                    Finding(
                        "unknown_product",
                        shelf,
                        _position_of(r, seen, plan, al, known),
                        None,
                        None,
                        r.bbox,
                        None,
                        r.facings,
                    )
                )
            else:
                leftovers.append((shelf, r, _position_of(r, seen, plan, al, known)))
    # An SKU planned here but seen unplaced elsewhere on the fixture is misplaced, not missing.
    used: set[int] = set()
    for shelf, p, gap_box in missing_candidates:
        hit = next(
            (k for k, (_, r, _) in enumerate(leftovers) if k not in used and r.sku == p.sku), None
        )
        if hit is None:
            findings.append(
                Finding("missing", shelf, p.position, p.sku, None, gap_box, p.facings, 0)
            )
        else:
            used.add(hit)
            placed[shelf][p.position] = "lenient" if leftovers[hit][0] == shelf else "absent"
            r = leftovers[hit][1]
            findings.append(
                Finding("misplaced", shelf, p.position, p.sku, r.sku, r.bbox, p.facings, r.facings)
            )
    for k, (shelf, r, position) in enumerate(leftovers):
        if k in used:
            continue
        kind = "extra" if r.sku not in planned_skus else "misplaced"
        findings.append(Finding(kind, shelf, position, None, r.sku, r.bbox, None, r.facings))

    kpis = _kpis(planogram, placed, observed_facings, scene, catalog)
    findings.sort(key=lambda f: (f.shelf, f.position or 0, f.type))
    return ComplianceReport(kpis, findings, realogram_json(observed, scene.products), warnings)


def _position_of(
    run: Run,
    seen: list[Run],
    plan: list[PlanogramPosition],
    al: Alignment,
    known: list[tuple[int, Run]],
) -> int | None:
    """Planned position of the last matched block left of ``run`` (first position if none)."""
    before = [plan[e].position for e, o in al.matched if known[o][1].bbox[0] < run.bbox[0]]
    return max(before) if before else (plan[0].position if plan else None)


def _kpis(
    planogram: list[PlanogramPosition],
    placed: dict[int, dict[int, str]],
    observed_facings: dict[str | None, int],
    scene: ShelfScene,
    catalog: dict[str, CatalogItem],
) -> dict[str, object]:
    skus = sorted({p.sku for p in planogram})
    oos = [s for s in skus if observed_facings.get(s, 0) == 0]
    positions = len(planogram)
    strict = sum(1 for p in planogram if placed.get(p.shelf, {}).get(p.position) == "strict")
    lenient = sum(
        1 for p in planogram if placed.get(p.shelf, {}).get(p.position) in ("strict", "lenient")
    )
    planned_facings: dict[str, int] = defaultdict(int)
    for p in planogram:
        planned_facings[p.sku] += p.facings
    facings_ratio = [min(1.0, observed_facings.get(s, 0) / planned_facings[s]) for s in skus]
    by_facings: dict[str, float] = defaultdict(float)
    by_width: dict[str, float] = defaultdict(float)
    products = scene.products
    for i in range(len(products)):
        sku = products.sku[i]
        brand = catalog[sku].brand if sku in catalog else ("unknown" if sku is None else sku)
        by_facings[brand] += 1
        by_width[brand] += float(products.widths[i])
    total_f, total_w = sum(by_facings.values()), sum(by_width.values())

    def pct(x: float) -> float:
        return round(100.0 * x, 2)

    return {
        "osa_pct": pct(1 - len(oos) / len(skus)) if skus else None,
        "oos_skus": oos,
        "compliance_strict_pct": pct(strict / positions) if positions else None,
        "compliance_lenient_pct": pct(lenient / positions) if positions else None,
        "facings_compliance_pct": pct(sum(facings_ratio) / len(skus)) if skus else None,
        "share_of_shelf_facings": {b: pct(v / total_f) for b, v in sorted(by_facings.items())}
        if total_f
        else {},
        "share_of_shelf_width": {b: pct(v / total_w) for b, v in sorted(by_width.items())}
        if total_w
        else {},
        "products": len(products),
        "gaps": len(scene.gaps),
        "unknown_products": int(observed_facings.get(None, 0)),
        # Facings the plan expected where the detector was unsure or drew nothing: counted as
        # products above, and shown apart so a manager can see how much of a score they make.
        "products_confirmed_by_planogram": sum(s == PLANOGRAM for s in scene.products.source),
    }
