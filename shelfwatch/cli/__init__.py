"""The ``shelfwatch`` command: a thin layer over ``shelfwatch.services``."""

from __future__ import annotations

import typer

from shelfwatch.cli import analyze, labels, models, operations, setup, users

app = typer.Typer(
    help="ShelfWatch: shelf photos in, product counts, gaps and planogram compliance out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("analyze")(analyze.analyze_cmd)
app.command("check")(analyze.check_cmd)
app.command("ingest")(operations.ingest_cmd)
app.command("worker")(operations.worker_cmd)
app.command("status")(operations.status_cmd)
app.command("requeue")(operations.requeue_cmd)
app.command("audit")(operations.audit_cmd)
app.command("schedule")(operations.schedule_cmd)
app.command("export")(operations.export_cmd)
app.command("synth")(operations.synth_cmd)
app.command("demo")(operations.demo_cmd)
app.command("dashboard")(operations.dashboard_cmd)
app.command("eval")(labels.eval_cmd)
app.command("train")(labels.train_cmd)
app.add_typer(setup.db_app, name="db")
app.add_typer(setup.stores_app, name="stores")
app.add_typer(setup.fixtures_app, name="fixtures")
app.add_typer(setup.catalog_app, name="catalog")
app.add_typer(setup.planogram_app, name="planogram")
app.add_typer(users.users_app, name="users")
app.add_typer(labels.labels_app, name="labels")
app.add_typer(models.models_app, name="models")
app.add_typer(models.bench_app, name="bench")


def main() -> None:
    app()
