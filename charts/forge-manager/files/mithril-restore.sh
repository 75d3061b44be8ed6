# The chart's mithril-restore init container (POSIX sh): restores the node's chain database from a
# Mithril snapshot before the node's first start, and does nothing once the database has
# immutable files. Environment: DB_DIR (the node's --database-path; its last component must be
# `db`, the directory mithril-client creates), MITHRIL_CLIENT (the binary), MITHRIL_DIGEST
# (`latest` or a digest), AGGREGATOR_ENDPOINT, GENESIS_VERIFICATION_KEY and, for the ledger state
# too, ANCILLARY_VERIFICATION_KEY (read by mithril-client itself).
set -eu
db="${DB_DIR:?DB_DIR is not set}"
if [ -d "$db/immutable" ] && [ -n "$(ls -A "$db/immutable" 2>/dev/null)" ]; then
  echo "mithril-restore: $db already has immutable files: nothing to restore"
  exit 0
fi
[ "$(basename "$db")" = db ] || { echo "mithril-restore: DB_DIR $db must end in /db (mithril-client restores into DIR/db)" >&2; exit 2; }
[ -n "${AGGREGATOR_ENDPOINT:-}" ] || { echo "mithril-restore: mithril.aggregatorEndpoint is empty" >&2; exit 2; }
[ -n "${GENESIS_VERIFICATION_KEY:-}" ] || { echo "mithril-restore: mithril.genesisVerificationKey is empty" >&2; exit 2; }
# What an interrupted attempt left (no immutable files yet) goes: the client refuses a non-empty
# target.
rm -rf "$db"
set -- cardano-db download "${MITHRIL_DIGEST:-latest}" --download-dir "$(dirname "$db")"
if [ -n "${ANCILLARY_VERIFICATION_KEY:-}" ]; then
  set -- "$@" --include-ancillary
fi
echo "mithril-restore: restoring $db from snapshot ${MITHRIL_DIGEST:-latest} of $AGGREGATOR_ENDPOINT"
exec "${MITHRIL_CLIENT:?MITHRIL_CLIENT is not set}" "$@"
