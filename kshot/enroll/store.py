"""Enrolled classes and their example embeddings in one SQLite file.

SQLite is embedded (no server) and transactional: every write below is one transaction,
committed with synchronous=FULL in WAL mode, so a crash mid-write leaves either the old or
the new state, and an acknowledged write survives a power cut. The store records the
fingerprint of the model whose embeddings it holds and refuses another model's; when the
original images were kept, `reembed` moves the store to a new model.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import KshotError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS classes (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS examples (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    class_id INTEGER NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
    embedding BLOB NOT NULL, image_sha256 TEXT NOT NULL, image BLOB, created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS examples_by_class ON examples(class_id);
"""


class StoreError(KshotError):
    """`status`: the HTTP code that fits (404 unknown class, 409 conflict, 400 otherwise)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def image_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class EmbeddingStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        if self.path.exists() and self.path.is_dir():
            raise StoreError(f"{self.path} is a directory; give a file path for the store")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            # Deleted rows (a person's photos and embeddings) are overwritten with zeros, not left in
            # free pages of the file.
            self.db.execute("PRAGMA secure_delete=ON")
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path} is not a kshot store ({e}); choose another --store path") from e
        self.lock = threading.RLock()  # one writer at a time within the process
        self._cache: tuple[int, list[str], np.ndarray, np.ndarray] | None = None

    def close(self) -> None:
        self.db.close()

    # ---- transactions and metadata ----------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
                self.db.execute(
                    "INSERT INTO meta VALUES ('generation', '1') ON CONFLICT(key) "
                    "DO UPDATE SET value = CAST(value AS INTEGER) + 1"
                )
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        """Reads share the connection with writes, so they take the same lock: a reader never sees
        another thread's uncommitted transaction."""
        with self.lock:
            return self.db.execute(sql, args).fetchall()

    def get_meta(self, key: str) -> str | None:
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def delete_meta(self, key: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM meta WHERE key = ?", (key,))

    def generation(self) -> int:
        return int(self.get_meta("generation") or 0)

    def bind_model(self, fingerprint: str, dim: int, description: str, threshold: float | None = None) -> None:
        """Record the model on first use, with its calibrated "unknown" threshold (if it has one) as
        the store's; refuse a different model afterwards."""
        held = self.get_meta("model_fingerprint")
        if held is None:
            with self.transaction() as db:
                self._write_model(db, fingerprint, dim, description, threshold)
            return
        if held != fingerprint:
            kept, total = self._read("SELECT COUNT(image), COUNT(*) FROM examples")[0]
            hint = (
                f"`kshot classes --store {self.path} --model NEW reembed` moves it to the new model "
                f"({kept} of {total} examples kept their images)"
                if kept
                else "its images were not kept, so it cannot be re-embedded: use the original model"
            )
            raise StoreError(
                f"{self.path} holds embeddings of model {self.get_meta('model')} "
                f"(fingerprint {held[:12]}), not of this one ({fingerprint[:12]}); {hint}"
            )

    # ---- writes --------------------------------------------------------------------------
    def add_examples(
        self,
        name: str,
        embeddings: np.ndarray,
        images: list[bytes],
        keep_images: bool = True,
        create: bool = True,
        must_be_new: bool = False,
    ) -> int:
        """Append examples to class `name` (creating it if `create`). Returns the class's example count."""
        name = name.strip()
        if not name:
            raise StoreError("a class needs a non-empty name")
        if len(images) != len(embeddings) or len(images) == 0:
            raise StoreError("give at least one image, and one embedding per image")
        now = time.time()
        with self.transaction() as db:
            row = db.execute("SELECT id FROM classes WHERE name = ?", (name,)).fetchone()
            if row and must_be_new:
                raise StoreError(f"class {name!r} is already enrolled; add examples to it instead", 409)
            if row is None:
                if not create:
                    raise StoreError(f"no class named {name!r}; enroll it first", 404)
                row = (db.execute("INSERT INTO classes (name, created) VALUES (?, ?)", (name, now)).lastrowid,)
            db.executemany(
                "INSERT INTO examples (class_id, embedding, image_sha256, image, created) VALUES (?, ?, ?, ?, ?)",
                [
                    (row[0], np.asarray(e, np.float32).tobytes(), image_hash(img), img if keep_images else None, now)
                    for e, img in zip(embeddings, images)
                ],
            )
            return db.execute("SELECT COUNT(*) FROM examples WHERE class_id = ?", (row[0],)).fetchone()[0]

    def bulk_enroll(self, names: list[str], embeddings: np.ndarray) -> None:
        """Many one-example classes in one transaction (benchmarks and imports)."""
        now = time.time()
        with self.transaction() as db:
            for name, e in zip(names, embeddings):
                cid = db.execute("INSERT INTO classes (name, created) VALUES (?, ?)", (name, now)).lastrowid
                db.execute(
                    "INSERT INTO examples (class_id, embedding, image_sha256, image, created) "
                    "VALUES (?, ?, '', NULL, ?)",
                    (cid, np.asarray(e, np.float32).tobytes(), now),
                )

    def delete(self, name: str) -> None:
        """Remove a class with its examples' embeddings and photos, from the database file too: the
        pages are zeroed (secure_delete) and the write-ahead log is checkpointed and truncated, so no
        old copy of them stays on disk."""
        with self.transaction() as db:
            if db.execute("DELETE FROM classes WHERE name = ?", (name,)).rowcount == 0:
                raise StoreError(f"no class named {name!r}", 404)
        with self.lock:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def rename(self, old: str, new: str) -> None:
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM classes WHERE name = ?", (new,)).fetchone():
                raise StoreError(f"a class named {new!r} already exists", 409)
            if db.execute("UPDATE classes SET name = ? WHERE name = ?", (new.strip(), old)).rowcount == 0:
                raise StoreError(f"no class named {old!r}", 404)

    def replace_embeddings(
        self,
        embeddings: dict[int, np.ndarray],
        fingerprint: str,
        dim: int,
        description: str,
        threshold: float | None = None,
    ) -> None:
        """Swap every example's embedding and the model record in one transaction (re-embedding).
        The threshold becomes the new model's: the old one was on the old model's score scale."""
        with self.transaction() as db:
            db.executemany(
                "UPDATE examples SET embedding = ? WHERE id = ?",
                [(np.asarray(e, np.float32).tobytes(), i) for i, e in embeddings.items()],
            )
            self._write_model(db, fingerprint, dim, description, threshold)

    @staticmethod
    def _write_model(
        db: sqlite3.Connection, fingerprint: str, dim: int, description: str, threshold: float | None
    ) -> None:
        for k, v in (("model_fingerprint", fingerprint), ("embedding_dim", str(dim)), ("model", description)):
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (k, v))
        if threshold is None:
            db.execute("DELETE FROM meta WHERE key = 'threshold'")
        else:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('threshold', ?)", (repr(float(threshold)),))

    # ---- reads ---------------------------------------------------------------------------
    def classes(self) -> list[dict]:
        rows = self._read(
            "SELECT c.name, COUNT(e.id), MIN(e.id) FROM classes c LEFT JOIN examples e "
            "ON e.class_id = c.id GROUP BY c.id ORDER BY c.name"
        )
        return [{"name": n, "examples": k, "first_example": first} for n, k, first in rows]

    def example_ids(self, name: str) -> list[int]:
        return [
            r[0]
            for r in self._read(
                "SELECT e.id FROM examples e JOIN classes c ON c.id = e.class_id WHERE c.name = ? ORDER BY e.id",
                (name,),
            )
        ]

    def image(self, example_id: int) -> bytes | None:
        rows = self._read("SELECT image FROM examples WHERE id = ?", (example_id,))
        return rows[0][0] if rows else None

    def kept_images(self) -> list[tuple[int, bytes]]:
        return self._read("SELECT id, image FROM examples WHERE image IS NOT NULL")

    def missing_images(self) -> int:
        return self._read("SELECT COUNT(*) FROM examples WHERE image IS NULL")[0][0]

    def snapshot(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(class names, example embeddings [n, d], example class index [n]), cached until the next write."""
        gen = self.generation()
        if self._cache is None or self._cache[0] != gen:
            with self.lock:
                names = [r[0] for r in self.db.execute("SELECT name FROM classes ORDER BY id")]
                ids = {r[0]: i for i, r in enumerate(self.db.execute("SELECT id FROM classes ORDER BY id"))}
                rows = self.db.execute("SELECT class_id, embedding FROM examples ORDER BY id").fetchall()
                dim = int(self.get_meta("embedding_dim") or 0)
                emb = (
                    np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(len(rows), dim).copy()
                    if rows
                    else np.zeros((0, dim), np.float32)
                )
                labels = np.fromiter((ids[r[0]] for r in rows), np.int64, len(rows))
                self._cache = (gen, names, emb, labels)
        return self._cache[1], self._cache[2], self._cache[3]
