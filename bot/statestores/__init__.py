"""State store writers (contract §3): `open_store` picks the Git or Bucket writer for a store."""

from bot.statestores.base import (
    FileDiff,
    ReadyResult,
    StateStoreError,
    StateStoreWriter,
    WriteResult,
    open_store,
)

__all__ = ["FileDiff", "ReadyResult", "StateStoreError", "StateStoreWriter", "WriteResult", "open_store"]
