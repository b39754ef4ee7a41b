package state

import "context"

type localKey struct{}

// WithLocal marks ctx as a request checked against this replica's own
// memory only, because the shared state was unreachable.
func WithLocal(ctx context.Context) context.Context {
	return context.WithValue(ctx, localKey{}, true)
}

// IsLocal reports whether ctx's request was checked against this
// replica's memory only (WithLocal).
func IsLocal(ctx context.Context) bool {
	v, _ := ctx.Value(localKey{}).(bool)
	return v
}
