// The slab_debug spec: which caches get which debug flags, from
// Options.Debug or the environment (HOTSLAB_SLAB_DEBUG), in the kernel's
// syntax.

package slab

import (
	"fmt"
	"os"
	"strings"
)

// DebugRule is one block of a slab_debug spec: flags for the caches it
// names (none: every cache). A name ending in '*' matches a prefix.
type DebugRule struct {
	Flags  Flags
	Caches []string
}

// ParseDebugSpec parses a slab_debug spec as the kernel's
// slab_debug= boot parameter reads it: blocks separated by ';', each the
// flag letters — F (sanity checks), Z (red zones), P (poisoning), U
// (alloc/free tracking), T (tracing), '-' for none — then optionally
// ",cache1,cache2..." (a trailing '*' matches a prefix). Letters are
// case-insensitive; an empty flag set means FZPU. Examples: "FZPU",
// "P,kmalloc-64", "FZ,dentry*;U,session", "-". An unknown letter or an
// empty or bad cache name is an error wrapping ErrInvalid.
func ParseDebugSpec(spec string) ([]DebugRule, error) {
	var rules []DebugRule
	for _, block := range strings.Split(spec, ";") {
		if block == "" {
			continue
		}
		parts := strings.Split(block, ",")
		var r DebugRule
		letters := parts[0]
		if letters == "" {
			r.Flags = ConsistencyChecks | RedZone | Poison | StoreUser
		}
		for _, ch := range letters {
			switch ch {
			case 'f', 'F':
				r.Flags |= ConsistencyChecks
			case 'z', 'Z':
				r.Flags |= RedZone
			case 'p', 'P':
				r.Flags |= Poison
			case 'u', 'U':
				r.Flags |= StoreUser
			case 't', 'T':
				r.Flags |= Trace
			case '-':
				r.Flags = 0
			default:
				return nil, fmt.Errorf("slab: slab_debug %q: unknown flag %q: %w", spec, ch, ErrInvalid)
			}
		}
		for _, name := range parts[1:] {
			n := strings.TrimSuffix(name, "*")
			if n == "" && name != "*" || !validName(strings.ReplaceAll(name, "*", "x")) {
				return nil, fmt.Errorf("slab: slab_debug %q: bad cache name %q: %w", spec, name, ErrInvalid)
			}
			r.Caches = append(r.Caches, name)
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// debugFor returns the debug flags the allocator's spec gives cache name,
// as the kernel's kmem_cache_flags() does: those of the first rule that
// names it, else those of the (last) rule naming no cache.
func (a *Allocator) debugFor(name string) Flags {
	var global Flags
	for _, r := range a.debugRules {
		if len(r.Caches) == 0 {
			global = r.Flags
			continue
		}
		for _, c := range r.Caches {
			if c == name || strings.HasSuffix(c, "*") && strings.HasPrefix(name, strings.TrimSuffix(c, "*")) {
				return r.Flags
			}
		}
	}
	return global
}

// debugSpec returns the spec of opts, else of the environment.
func debugSpec(opts *Options) string {
	if opts != nil && opts.Debug != "" {
		return opts.Debug
	}
	return os.Getenv("HOTSLAB_SLAB_DEBUG")
}
