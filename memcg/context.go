package memcg

import "context"

type ctxKey struct{}

// NewContext returns a context carrying g: what slab's AllocContext and
// KmallocContext charge (the kernel's "current task's memcg").
func NewContext(ctx context.Context, g *Group) context.Context {
	return context.WithValue(ctx, ctxKey{}, g)
}

// FromContext returns the group ctx carries, or nil.
func FromContext(ctx context.Context) *Group {
	g, _ := ctx.Value(ctxKey{}).(*Group)
	return g
}
