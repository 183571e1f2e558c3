// Package bench holds side-by-side allocator benchmarks.
package bench
