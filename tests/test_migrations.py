from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from recall_ray import migrate
from recall_ray.orm import Base
from tests.conftest import make_database


def test_upgrade_downgrade_round_trip_and_orm_matches(pg_server):
    url = make_database(pg_server, "recall_migrations")
    migrate.upgrade(url)
    assert migrate.current_revision(url) == migrate.head_revision(url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
        assert diff == [], f"ORM and migrations differ: {diff}"
        expected = {t.name for t in Base.metadata.sorted_tables}
        assert expected <= set(inspect(engine).get_table_names())

        migrate.downgrade(url, "base")
        engine.dispose()
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        assert migrate.current_revision(url) is None

        migrate.upgrade(url)  # and up again from empty
        engine.dispose()
        assert expected <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
