"""Storage: the SQL schema (SQLAlchemy 2 ORM), engine set-up and Alembic migrations."""
