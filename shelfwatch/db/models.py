"""The domain schema. Alembic migrations in ``migrations/`` must produce exactly this."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class PhotoStatus(enum.StrEnum):
    queued = "queued"
    processing = "processing"
    done = "done"
    failed = "failed"  # will be retried after a backoff
    quarantined = "quarantined"  # gave up after too many attempts


class FindingStatus(enum.StrEnum):
    open = "open"
    acknowledged = "acknowledged"  # known, cannot be fixed now; carried to later audits
    fixed = "fixed"  # a manager says so; the next audit of the fixture decides
    confirmed = "confirmed"  # fixed, and the next audit no longer saw it
    reopened = "reopened"  # marked fixed, but the next audit saw it again


class Store(Base):
    __tablename__ = "stores"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    region: Mapped[str | None] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    fixtures: Mapped[list[Fixture]] = relationship(back_populates="store")


class Fixture(Base):
    """A shelving unit (bay, gondola section) in a store, photographed as one."""

    __tablename__ = "fixtures"
    __table_args__ = (UniqueConstraint("store_id", "code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    aisle: Mapped[str | None] = mapped_column(String(64))
    width_cm: Mapped[float | None] = mapped_column(Float)
    shelf_count: Mapped[int | None] = mapped_column(Integer)
    store: Mapped[Store] = relationship(back_populates="fixtures")


class CatalogProduct(Base):
    __tablename__ = "catalog_products"
    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    brand: Mapped[str] = mapped_column(String(100), default="", index=True)
    category: Mapped[str] = mapped_column(String(100), default="")
    width_cm: Mapped[float | None] = mapped_column(Float)
    height_cm: Mapped[float | None] = mapped_column(Float)
    prompt: Mapped[str | None] = mapped_column(String(300))
    reference_image: Mapped[str | None] = mapped_column(String(500))


class Planogram(Base):
    """One version of a reference layout; the version in force on a date is used."""

    __tablename__ = "planograms"
    __table_args__ = (UniqueConstraint("name", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    fixture_code: Mapped[str] = mapped_column(String(64), index=True)
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    effective_from: Mapped[dt.date] = mapped_column(Date)
    effective_to: Mapped[dt.date | None] = mapped_column(Date)
    source: Mapped[str | None] = mapped_column(String(500))
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    positions: Mapped[list[PlanogramPosition]] = relationship(
        back_populates="planogram", cascade="all, delete-orphan", order_by="PlanogramPosition.id"
    )


class PlanogramPosition(Base):
    __tablename__ = "planogram_positions"
    __table_args__ = (UniqueConstraint("planogram_id", "shelf", "position"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    planogram_id: Mapped[int] = mapped_column(ForeignKey("planograms.id", ondelete="CASCADE"))
    shelf: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str] = mapped_column(ForeignKey("catalog_products.sku"), index=True)
    facings: Mapped[int] = mapped_column(Integer)
    planogram: Mapped[Planogram] = relationship(back_populates="positions")


class Photo(Base):
    """A shelf photo and its place in the processing queue."""

    __tablename__ = "photos"
    __table_args__ = (
        Index("ix_photos_queue", "status", "next_attempt_at"),
        Index("ix_photos_store_captured", "store_id", "captured_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    fixture_id: Mapped[int] = mapped_column(
        ForeignKey("fixtures.id", ondelete="CASCADE"), index=True
    )
    captured_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    storage_path: Mapped[str] = mapped_column(String(500))
    original_name: Mapped[str | None] = mapped_column(String(500))
    size_bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=PhotoStatus.queued.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    locked_by: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    processed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    backend: Mapped[str | None] = mapped_column(String(64))
    model_version: Mapped[str | None] = mapped_column(String(200))  # which weights analysed it
    quality: Mapped[dict | None] = mapped_column(JSON)
    # "usable" or "retake" (quality gate); audits and KPIs use usable photos only.
    verdict: Mapped[str | None] = mapped_column(String(16))
    # A capture: "photo" (one frame), "video" (the stored file is the video) or "series"
    # (the stored file is a JSON list of its photos' store paths). For a video or series,
    # width/height are the stitched fixture's, ``frames`` the frames used, and
    # ``stitched_path`` the stitched picture in the store.
    media: Mapped[str] = mapped_column(String(8), default="photo", server_default="photo")
    frames: Mapped[int | None] = mapped_column(Integer)
    stitched_path: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    store: Mapped[Store] = relationship()
    fixture: Mapped[Fixture] = relationship()


class Worker(Base):
    """A running worker process; its heartbeat says it is alive (photos of a silent one are
    taken over by the others)."""

    __tablename__ = "workers"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)  # host:pid
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    backend: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    done: Mapped[int] = mapped_column(Integer, default=0)


class PhotoShelf(Base):
    """A shelf row found in a photo (index 1 = top)."""

    __tablename__ = "photo_shelves"
    __table_args__ = (UniqueConstraint("photo_id", "shelf"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"))
    shelf: Mapped[int] = mapped_column(Integer)
    y1: Mapped[int] = mapped_column(Integer)
    y2: Mapped[int] = mapped_column(Integer)
    x1: Mapped[int] = mapped_column(Integer)
    x2: Mapped[int] = mapped_column(Integer)
    edge_y: Mapped[int | None] = mapped_column(Integer)
    bay: Mapped[int | None] = mapped_column(Integer)  # 1 = leftmost; older rows: NULL


class ProductInstance(Base):
    """One product facing seen in a photo.

    ``mask_rle`` is the COCO RLE (JSON: size, counts) of the mask inside the box: its size is
    the box's (height, width) and its origin the box's top-left corner.
    """

    __tablename__ = "product_instances"
    id: Mapped[int] = mapped_column(primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    shelf: Mapped[int] = mapped_column(Integer)
    x1: Mapped[int] = mapped_column(Integer)
    y1: Mapped[int] = mapped_column(Integer)
    x2: Mapped[int] = mapped_column(Integer)
    y2: Mapped[int] = mapped_column(Integer)
    mask_rle: Mapped[str | None] = mapped_column(Text)
    score: Mapped[float] = mapped_column(Float)
    sku: Mapped[str | None] = mapped_column(String(64), index=True)
    sku_score: Mapped[float | None] = mapped_column(Float)
    backend: Mapped[str] = mapped_column(String(64))
    track: Mapped[int | None] = mapped_column(Integer)  # the product across a capture's frames
    # What put it there (``core.scene.SOURCES``); NULL for rows stored before it was recorded.
    source: Mapped[str | None] = mapped_column(String(16))


class Gap(Base):
    """Empty facing space on a shelf."""

    __tablename__ = "gaps"
    id: Mapped[int] = mapped_column(primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    shelf: Mapped[int] = mapped_column(Integer)
    x1: Mapped[int] = mapped_column(Integer)
    y1: Mapped[int] = mapped_column(Integer)
    x2: Mapped[int] = mapped_column(Integer)
    y2: Mapped[int] = mapped_column(Integer)
    width_px: Mapped[int] = mapped_column(Integer)
    width_cm: Mapped[float | None] = mapped_column(Float)
    missing_facings: Mapped[int | None] = mapped_column(Integer)


class Audit(Base):
    """A store's audit for one day: its KPIs over the fixtures photographed that day."""

    __tablename__ = "audits"
    __table_args__ = (UniqueConstraint("store_id", "audit_date"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    audit_date: Mapped[dt.date] = mapped_column(Date, index=True)
    status: Mapped[str] = mapped_column(String(16), default="done")
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    photos: Mapped[int] = mapped_column(Integer, default=0)
    products: Mapped[int] = mapped_column(Integer, default=0)
    gaps: Mapped[int] = mapped_column(Integer, default=0)
    osa_pct: Mapped[float | None] = mapped_column(Float)
    compliance_strict_pct: Mapped[float | None] = mapped_column(Float)
    compliance_lenient_pct: Mapped[float | None] = mapped_column(Float)
    facings_compliance_pct: Mapped[float | None] = mapped_column(Float)
    kpis: Mapped[dict | None] = mapped_column(JSON)
    models: Mapped[str | None] = mapped_column(String(500))  # backends/model versions used
    findings: Mapped[list[ComplianceFinding]] = relationship(
        back_populates="audit", cascade="all, delete-orphan"
    )


class ComplianceFinding(Base):
    __tablename__ = "compliance_findings"
    __table_args__ = (Index("ix_compliance_findings_type_status", "type", "status"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    audit_id: Mapped[int] = mapped_column(ForeignKey("audits.id", ondelete="CASCADE"), index=True)
    photo_id: Mapped[int | None] = mapped_column(ForeignKey("photos.id", ondelete="SET NULL"))
    fixture_id: Mapped[int] = mapped_column(ForeignKey("fixtures.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    shelf: Mapped[int] = mapped_column(Integer)
    position: Mapped[int | None] = mapped_column(Integer)
    expected_sku: Mapped[str | None] = mapped_column(String(64))
    observed_sku: Mapped[str | None] = mapped_column(String(64))
    expected_facings: Mapped[int | None] = mapped_column(Integer)
    observed_facings: Mapped[int | None] = mapped_column(Integer)
    x1: Mapped[int | None] = mapped_column(Integer)
    y1: Mapped[int | None] = mapped_column(Integer)
    x2: Mapped[int | None] = mapped_column(Integer)
    y2: Mapped[int | None] = mapped_column(Integer)
    impact: Mapped[float] = mapped_column(Float, default=1.0)
    status: Mapped[str] = mapped_column(String(16), default=FindingStatus.open.value)
    status_by: Mapped[str | None] = mapped_column(String(100))
    status_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Same fixture, type, shelf, position and SKUs: "the same finding" in a later audit.
    key: Mapped[str] = mapped_column(String(300), default="", index=True)
    reopened: Mapped[bool] = mapped_column(Boolean, default=False)
    audit: Mapped[Audit] = relationship(back_populates="findings")


class Role(enum.StrEnum):
    manager = "manager"  # the stores in user_stores
    regional = "regional"  # the stores of one region
    admin = "admin"  # every store


class User(Base):
    """A dashboard login. ``password_hash`` is an Argon2id hash (argon2-cffi)."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    region: Mapped[str | None] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_login_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    stores: Mapped[list[Store]] = relationship(secondary="user_stores", order_by="Store.code")


class UserStore(Base):
    __tablename__ = "user_stores"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    store_id: Mapped[int] = mapped_column(
        ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True
    )


class LabelSet(Base):
    """One imported labels file: a named, versioned set of labeled photos."""

    __tablename__ = "label_sets"
    __table_args__ = (UniqueConstraint("name", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(500))
    source_sha256: Mapped[str] = mapped_column(String(64), unique=True)  # re-import = no-op
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    images: Mapped[list[LabelImage]] = relationship(
        back_populates="label_set", cascade="all, delete-orphan", order_by="LabelImage.id"
    )


class LabelImage(Base):
    """A labeled photo, known by its content hash (and linked to the photo when stored)."""

    __tablename__ = "label_images"
    __table_args__ = (UniqueConstraint("label_set_id", "sha256"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    label_set_id: Mapped[int] = mapped_column(ForeignKey("label_sets.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    file_name: Mapped[str] = mapped_column(String(500))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    photo_id: Mapped[int | None] = mapped_column(ForeignKey("photos.id", ondelete="SET NULL"))
    label_set: Mapped[LabelSet] = relationship(back_populates="images")
    labels: Mapped[list[Label]] = relationship(cascade="all, delete-orphan", order_by="Label.id")


class Label(Base):
    """One labeled object: category (a SKU, ``product`` or ``gap``), box, optional mask.

    ``mask_rle`` is the full-image COCO RLE (JSON), as in the labels file.
    """

    __tablename__ = "labels"
    id: Mapped[int] = mapped_column(primary_key=True)
    label_image_id: Mapped[int] = mapped_column(
        ForeignKey("label_images.id", ondelete="CASCADE"), index=True
    )
    category: Mapped[str] = mapped_column(String(100))
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    mask_rle: Mapped[str | None] = mapped_column(Text)
    iscrowd: Mapped[int] = mapped_column(Integer, default=0)


class Evaluation(Base):
    """A backend scored against a label set (``shelfwatch eval``)."""

    __tablename__ = "evaluations"
    id: Mapped[int] = mapped_column(primary_key=True)
    label_set_id: Mapped[int | None] = mapped_column(
        ForeignKey("label_sets.id", ondelete="CASCADE"), index=True
    )
    backend: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    metrics: Mapped[dict] = mapped_column(JSON)
