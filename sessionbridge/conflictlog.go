package sessionbridge

import (
	"log/slog"

	"github.com/sessiongate/sessiongate/internal/logtext"
)

// ConflictKeys is how a warning about a session write that overrode
// concurrent changes names them (merge mode, on the PHP and Django paths):
// how many keys ("count") and their names as far as they fit
// logtext.MaxValue written out ("keys"). Key names are the app's, often
// made from what clients send (a cart keyed by product slug, form tokens
// keyed by form id): all of them made a line past what log pipelines take
// as one (Docker's json-file driver splits at 16 KiB).
type ConflictKeys []string

// LogValue implements slog.LogValuer.
func (k ConflictKeys) LogValue() slog.Value {
	return slog.GroupValue(slog.Int("count", len(k)), slog.Any("keys", logtext.ClipList(k, logtext.MaxValue)))
}
