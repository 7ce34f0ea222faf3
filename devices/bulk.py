"""Write many rows of one model without building model instances (the importer's write path).

Django's ``bulk_create`` builds an instance per row and prepares every field of every instance in
Python, which was most of an import's time. The importer's values are already what the database
driver takes (str, int, bool, None, aware datetimes), so a :class:`RowWriter` turns value dicts into
tuples with one dict merge and one ``itemgetter`` per row, and writes them:

- PostgreSQL: ``COPY`` (psycopg formats COPY rows in C) straight into the table for rows that are
  new, with their IDs taken from the table's sequence beforehand; or into a temporary table and
  then one ``INSERT … SELECT … ON CONFLICT DO UPDATE`` for rows that may exist;
- SQLite (and other databases): ``executemany`` of the same ``INSERT … ON CONFLICT DO UPDATE``.

The rows end the same as ``bulk_create(update_conflicts=True)`` would leave them: every column of
a new row from the values or the model field's default, and on a conflict only the named columns.
"""

import collections
import functools
import json
import operator

from django.db import connection


class RowWriter:
    """Rows of ``model`` as tuples of every concrete column but the primary key, by attname."""

    def __init__(self, model):
        self.model = model
        meta = model._meta
        fields = [f for f in meta.concrete_fields if not f.primary_key]
        self.columns = tuple(f.attname for f in fields)
        self.defaults = {}
        self.json_columns = frozenset(f.attname for f in fields if f.get_internal_type() == "JSONField")
        for f in fields:
            default = f.get_default()
            if f.attname in self.json_columns:
                default = json.dumps(default)  # JSON columns take their JSON text
            self.defaults[f.attname] = default
        self._getter = operator.itemgetter(*self.columns)
        self._datetimes = [i for i, f in enumerate(fields) if f.get_internal_type() == "DateTimeField"]
        self.table = meta.db_table
        self.pk_column = meta.pk.column

    def _column(self, name):
        return self.model._meta.get_field(name).column

    def row(self, values, extra):
        """One row (a tuple in :attr:`columns` order) from two dicts of values; the rest take their defaults."""
        return self._getter(self.full(values, extra))

    def full(self, values, extra):
        """Every column of a new row as a dict (:meth:`row`'s values before they become a tuple)."""
        return {**self.defaults, **values, **extra}

    def encoded(self, values):
        """``values`` with Python values of JSON columns as the JSON text :meth:`row` takes."""
        if self.json_columns.isdisjoint(values):
            return values
        values = dict(values)
        for name in self.json_columns.intersection(values):
            values[name] = _json_text(values[name])
        return values

    def _prepared(self, rows):
        """Rows as this database's driver takes them: SQLite stores date-times as Django's text."""
        if connection.vendor == "postgresql" or not self._datetimes:
            return rows
        adapt = connection.ops.adapt_datetimefield_value
        prepared = []
        for row in rows:
            row = list(row)
            for i in self._datetimes:
                if row[i] is not None:
                    row[i] = adapt(row[i])
            prepared.append(row)
        return prepared

    def insert_new(self, rows, keys=True):
        """Insert rows that must not exist yet; a row that exists after all (written by someone else meanwhile)
        raises IntegrityError. PostgreSQL: ``COPY``, with primary keys taken from the table's sequence first and
        returned in the rows' order when ``keys`` (else None); elsewhere one ``executemany`` INSERT, returning
        None (read the keys back).
        """
        if not rows:
            return []
        if connection.vendor != "postgresql":
            return self.upsert(rows, unique=None, update_fields=())
        qn = connection.ops.quote_name
        columns = ", ".join(qn(self._column(name)) for name in self.columns)
        with connection.cursor() as cursor:
            if keys:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                    [self.table, self.pk_column, len(rows)],
                )
                ids = [pk for (pk,) in cursor.fetchall()]
                sql = "COPY %s (%s, %s) FROM STDIN" % (qn(self.table), qn(self.pk_column), columns)
                rows = [(pk, *row) for pk, row in zip(ids, rows, strict=True)]
            else:
                ids = None
                sql = "COPY %s (%s) FROM STDIN" % (qn(self.table), columns)
            # The driver's cursor, for COPY; its errors become Django's (IntegrityError and so on).
            with connection.wrap_database_errors, cursor.cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
        return ids

    def upsert(self, rows, unique, update_fields, returning=()):
        """``INSERT`` rows or, on a conflict on ``unique`` (attnames), update ``update_fields`` from them.

        PostgreSQL returns the ``returning`` columns (attnames) and the primary key of every row written, as
        tuples in no particular order; elsewhere it returns None (read back what you need).
        """
        if not rows:
            return []
        qn = connection.ops.quote_name
        table = qn(self.table)
        column_list = ", ".join(qn(self._column(name)) for name in self.columns)
        if unique:
            assignments = ", ".join("%s = EXCLUDED.%s" % (qn(c), qn(c)) for c in map(self._column, update_fields))
            conflict = " ON CONFLICT (%s) DO %s" % (
                ", ".join(qn(self._column(name)) for name in unique),
                "UPDATE SET " + assignments if assignments else "NOTHING",
            )
        else:
            conflict = ""
        with connection.cursor() as cursor:
            if connection.vendor != "postgresql":
                placeholders = ", ".join(["%s"] * len(self.columns))
                sql = "INSERT INTO %s (%s) VALUES (%s)%s" % (table, column_list, placeholders, conflict)  # noqa: S608
                cursor.executemany(sql, self._prepared(rows))
                return None
            temp = qn("bulk_" + self.table)
            # One temporary table per session, made the first time; the INSERT below empties it again.
            cursor.execute("CREATE TEMPORARY TABLE IF NOT EXISTS %s AS SELECT %s FROM %s WITH NO DATA" % (  # noqa: S608
                temp, column_list, table))
            copy_sql = "COPY %s (%s) FROM STDIN" % (temp, column_list)
            with connection.wrap_database_errors, cursor.cursor.copy(copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
            returned = ", ".join(qn(c) for c in [*map(self._column, returning), self.pk_column])
            cursor.execute(
                "WITH moved AS (DELETE FROM %s RETURNING %s) INSERT INTO %s (%s) SELECT %s FROM moved%s RETURNING %s"  # noqa: S608
                % (temp, column_list, table, column_list, column_list, conflict, returned)
            )
            return cursor.fetchall()


def _json_text(value):
    """The JSON text of a value; lists of strings (failed rules: few distinct ones) from a cache."""
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return _json_list(tuple(value))
    return json.dumps(value)


@functools.lru_cache(maxsize=4096)
def _json_list(items):
    return json.dumps(list(items))


def filter_in(queryset, field_name, ids):
    """``queryset`` filtered to ``field_name`` in ``ids``. PostgreSQL takes the IDs as one array parameter:
    Django prepares an ``IN`` list value by value, which cost more than the query itself."""
    if connection.vendor == "postgresql":
        column = "%s.%s" % (connection.ops.quote_name(queryset.model._meta.db_table),
                            connection.ops.quote_name(queryset.model._meta.get_field(field_name).column))
        return queryset.extra(where=["%s = ANY(%%s)" % column], params=[list(ids)])  # noqa: S610 - names only
    return queryset.filter(**{field_name + "__in": ids})


@functools.cache
def _row_type(fields):
    return collections.namedtuple("Row", fields)


def select_rows(queryset, fields, named=True):
    """The rows of ``queryset.values_list(*fields, named=named)``, read fast on PostgreSQL.

    Django reads PostgreSQL timestamps with a pure-Python loader (to pin their time zone); for fields
    that need no other Django converter the same SQL runs on a cursor with psycopg's own (C) loader,
    which gives the same aware UTC datetimes (Django sets the connection's time zone to UTC).
    """
    queryset = queryset.values_list(*fields, named=named)
    if connection.vendor != "postgresql":
        return list(queryset)
    sql, params = queryset.query.sql_with_params()
    return select_sql(sql, params, fields, named)


def select_sql(sql, params, fields, named=True):
    """The rows of a PostgreSQL query whose columns are ``fields``, read with psycopg's C timestamp loader."""
    import psycopg
    from psycopg.pq import Format

    row_type = _row_type(tuple(fields)) if named else None
    with connection.cursor() as cursor:
        oid = psycopg.adapters.types["timestamptz"].oid
        cursor.cursor.adapters.register_loader(oid, psycopg.adapters.get_loader(oid, Format.TEXT))
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [row_type._make(row) for row in rows] if named else rows
