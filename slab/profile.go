// The live-object profile of StoreUser caches: objects by allocation
// site as a pprof profile (inuse_objects, inuse_space), and the kernel's
// alloc_calls / free_calls listings.

package slab

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"time"
)

// site is one allocation (or free) site: its stack, how many live
// objects it has and their bytes, their ages and goroutines.
type site struct {
	pcs            []uintptr
	objects, bytes int64
	minAge, maxAge time.Duration
	sumAge         time.Duration
	minG, maxG     uintptr
	cache          string
}

// sites walks k's slabs (a snapshot: objects allocated or freed
// meanwhile may be missed or seen) and groups the allocated objects'
// alloc tracks (free == false) or every object's last free track (free
// == true) by stack.
func (k *kmemCache) sites(free bool) map[string]*site {
	out := map[string]*site{}
	if k.debug&StoreUser == 0 {
		return out
	}
	k.debugLock.Lock()
	bases := make([]uintptr, 0, len(k.debugSlabs))
	for b := range k.debugSlabs {
		bases = append(bases, b)
	}
	k.debugLock.Unlock()
	now := time.Now()
	for _, base := range bases {
		h := k.hdrAt(base)
		if h == nil || h.cache != k.id || h.base != base {
			continue // discarded meanwhile
		}
		for i := 0; i < k.objectsOf(h); i++ {
			addr := base + uintptr(i*k.size)
			live := *k.state(addr) == redActive
			if !free && !live {
				continue // alloc_calls: live objects only
			}
			t := k.track(addr, free)
			if t[trackPCs] == 0 {
				continue
			}
			pcs := append([]uintptr(nil), trimPCs(t[:trackPCs])...)
			key := fmt.Sprint(pcs)
			s := out[key]
			age := now.Sub(time.Unix(0, int64(t[trackPCs])))
			if s == nil {
				s = &site{pcs: pcs, minAge: age, minG: t[trackPCs+1], maxG: t[trackPCs+1], cache: k.name}
				out[key] = s
			}
			s.objects++
			s.bytes += int64(k.objectSize.Load())
			s.sumAge += age
			s.minAge, s.maxAge = min(s.minAge, age), max(s.maxAge, age)
			s.minG, s.maxG = min(s.minG, t[trackPCs+1]), max(s.maxG, t[trackPCs+1])
		}
	}
	return out
}

// Calls returns the kernel's alloc_calls (free false: live objects by the
// site that allocated them) or free_calls (free true: objects by the site
// that last freed them) listing for a StoreUser cache: one line per
// site, most objects first, "count function+offset age=min/avg/max
// pid=min-max" (pid: goroutine ids). Empty for other caches.
func (c *Cache) Calls(free bool) string { return c.c.calls(free) }

func (k *kmemCache) calls(free bool) string {
	// The kernel's listing is by call site (one address), the profile's
	// by whole stack: merge the stacks that share their first frame.
	bySite := map[string]*site{}
	for _, s := range k.sites(free) {
		key := fmt.Sprint(firstPC(s.pcs))
		m := bySite[key]
		if m == nil {
			cp := *s
			cp.pcs = s.pcs[:min(1, len(s.pcs))]
			bySite[key] = &cp
			continue
		}
		m.objects += s.objects
		m.bytes += s.bytes
		m.sumAge += s.sumAge
		m.minAge, m.maxAge = min(m.minAge, s.minAge), max(m.maxAge, s.maxAge)
		m.minG, m.maxG = min(m.minG, s.minG), max(m.maxG, s.maxG)
	}
	ss := sortedSites(bySite)
	var b strings.Builder
	for _, s := range ss {
		fmt.Fprintf(&b, "%7d %s age=%d/%d/%d pid=%d-%d\n", s.objects, frameName(firstPC(s.pcs)),
			s.minAge.Milliseconds(), (s.sumAge / time.Duration(s.objects)).Milliseconds(), s.maxAge.Milliseconds(), s.minG, s.maxG)
	}
	return b.String()
}

func firstPC(pcs []uintptr) uintptr {
	if len(pcs) == 0 {
		return 0
	}
	return pcs[0]
}

func sortedSites(m map[string]*site) []*site {
	out := make([]*site, 0, len(m))
	for _, s := range m {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].objects != out[j].objects {
			return out[i].objects > out[j].objects
		}
		return fmt.Sprint(out[i].pcs) < fmt.Sprint(out[j].pcs)
	})
	return out
}

// WriteHeapProfile writes the live objects of every StoreUser cache of a,
// by allocation site, as a gzipped pprof profile with the sample types
// inuse_objects and inuse_space (like Go's heap profile) and a "cache"
// label per sample: `go tool pprof` shows where the off-heap memory is
// held. Objects of caches without StoreUser are not in it.
func (a *Allocator) WriteHeapProfile(w io.Writer) error {
	var all []*site
	for _, ci := range a.Caches() {
		all = append(all, sortedSites(ci.cache.sites(false))...)
	}
	return writeProfile(w, all)
}

// WriteHeapProfile is Allocator.WriteHeapProfile for this cache alone.
func (c *Cache) WriteHeapProfile(w io.Writer) error {
	return writeProfile(w, sortedSites(c.c.sites(false)))
}

// writeProfile encodes sites as a pprof profile (profile.proto).
func writeProfile(w io.Writer, sites []*site) error {
	var p pbuf
	strs := map[string]int64{"": 0}
	table := []string{""}
	str := func(s string) int64 {
		if i, ok := strs[s]; ok {
			return i
		}
		strs[s] = int64(len(table))
		table = append(table, s)
		return int64(len(table) - 1)
	}
	valueType := func(field int, typ, unit string) {
		var v pbuf
		v.int(1, str(typ))
		v.int(2, str(unit))
		p.bytes(field, v.b)
	}
	valueType(1, "inuse_objects", "count")
	valueType(1, "inuse_space", "bytes")
	locs := map[uintptr]uint64{}
	funcs := map[string]uint64{}
	var locBuf, funcBuf pbuf
	location := func(pc uintptr) uint64 {
		if id, ok := locs[pc]; ok {
			return id
		}
		id := uint64(len(locs) + 1)
		locs[pc] = id
		var l pbuf
		l.uint(1, id)
		l.uint(3, uint64(pc))
		frames := runtime.CallersFrames([]uintptr{pc})
		for {
			f, more := frames.Next()
			fid, ok := funcs[f.Function]
			if !ok {
				fid = uint64(len(funcs) + 1)
				funcs[f.Function] = fid
				var fn pbuf
				fn.uint(1, fid)
				fn.int(2, str(f.Function))
				fn.int(3, str(f.Function))
				fn.int(4, str(f.File))
				funcBuf.bytes(5, fn.b)
			}
			var line pbuf
			line.uint(1, fid)
			line.int(2, int64(f.Line))
			l.bytes(4, line.b)
			if !more {
				break
			}
		}
		locBuf.bytes(4, l.b)
		return id
	}
	for _, s := range sites {
		var smp, ids, vals pbuf
		for _, pc := range s.pcs {
			ids.varint(uint64(location(pc)))
		}
		smp.bytes(1, ids.b)
		vals.varint(uint64(s.objects))
		vals.varint(uint64(s.bytes))
		smp.bytes(2, vals.b)
		var lab pbuf
		lab.int(1, str("cache"))
		lab.int(2, str(s.cache))
		smp.bytes(3, lab.b)
		p.bytes(2, smp.b)
	}
	p.b = append(p.b, locBuf.b...)
	p.b = append(p.b, funcBuf.b...)
	for _, s := range table {
		p.bytes(6, []byte(s))
	}
	p.int(9, time.Now().UnixNano())
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(p.b); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// pbuf is a minimal protobuf encoder.
type pbuf struct{ b []byte }

func (p *pbuf) varint(v uint64) {
	for v >= 0x80 {
		p.b = append(p.b, byte(v)|0x80)
		v >>= 7
	}
	p.b = append(p.b, byte(v))
}

func (p *pbuf) uint(field int, v uint64) {
	p.varint(uint64(field)<<3 | 0)
	p.varint(v)
}

func (p *pbuf) int(field int, v int64) { p.uint(field, uint64(v)) }

func (p *pbuf) bytes(field int, b []byte) {
	p.varint(uint64(field)<<3 | 2)
	p.varint(uint64(len(b)))
	p.b = append(p.b, b...)
}
