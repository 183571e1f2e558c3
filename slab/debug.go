// Debug caches: the kernel's slub_debug — sanity checks (F), red zones
// (Z), poisoning (P), alloc/free tracking (U) and tracing (T) — with
// reports in the kernel's shape and quarantine of damaged objects.

package slab

import (
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/hotslab/hotslab/lockdep"
	"github.com/petermattis/goid"
)

// debugLockClass: a debug cache's slab set (a leaf).
var debugLockClass = lockdep.NewClass("slab_debug_lock")

// The metadata of a debug cache's object, after the object (rounded up
// to 8 bytes): an 8-byte state word, which is the red zone (SLUB_RED_*
// patterns: the object is allocated or free), the free pointer (outside
// the object, so poison does not clobber it), and with StoreUser an alloc
// and a free track.
const (
	redActive   = 0xcccccccccccccccc // SLUB_RED_ACTIVE: allocated
	redInactive = 0xbbbbbbbbbbbbbbbb // SLUB_RED_INACTIVE: free
	poisonFree  = 0x6b               // POISON_FREE
	poisonEnd   = 0xa5               // POISON_END: the last byte
	trackPCs    = 8
	trackBytes  = (trackPCs + 3) * 8 // PCs, time, goroutine, P
)

// debugMeta returns the metadata bytes after a debug object.
func debugMeta(fl Flags) int {
	n := 16 // state word, free pointer
	if fl&StoreUser != 0 {
		n += 2 * trackBytes
	}
	return n
}

// DebugReport describes a problem a debug cache found, in the kernel's
// words: "Redzone overwritten", "Poison overwritten", "Object already
// free", "Wrong object count", "Freelist corrupted". Text is the whole
// report as the kernel prints it (banner, bytes around the object, the
// alloc and free tracks).
type DebugReport struct {
	Cache string
	Kind  string
	Addr  uintptr
	Text  string
}

// Quarantined returns how many damaged objects the cache took out of
// circulation (they stay allocated; the cache keeps working).
func (c *Cache) Quarantined() int64 { return c.c.quarantined.Load() }

// DebugFlags returns the cache's debug flags.
func (c *Cache) DebugFlags() Flags { return c.c.debug }

func (k *kmemCache) state(addr uintptr) *uint64 {
	return (*uint64)(ptr(addr + k.metaOff))
}

func (k *kmemCache) track(addr uintptr, free bool) []uintptr {
	off := k.metaOff + 16
	if free {
		off += trackBytes
	}
	return unsafe.Slice((*uintptr)(ptr(addr+off)), trackPCs+3)
}

// debugInit prepares a new slab's object: free, poisoned, no tracks.
func (k *kmemCache) debugInit(addr uintptr) {
	*k.state(addr) = redInactive
	if k.debug&Poison != 0 {
		k.poison(addr)
	}
	if k.debug&StoreUser != 0 {
		clear(k.track(addr, false))
		clear(k.track(addr, true))
	}
}

func (k *kmemCache) poison(addr uintptr) {
	b := unsafe.Slice((*byte)(ptr(addr)), k.metaOff)
	for i := range b {
		b[i] = poisonFree
	}
	b[len(b)-1] = poisonEnd
}

// record stores the calling stack in addr's alloc or free track, from
// the first frame outside the allocator (its caller's).
func (k *kmemCache) record(addr uintptr, free bool) {
	t := k.track(addr, free)
	var pcs [trackPCs + 16]uintptr
	n := runtime.Callers(3, pcs[:])
	skip := 0
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, "github.com/hotslab/hotslab/slab.") || strings.HasSuffix(f.File, "_test.go") {
			break
		}
		skip++
		if !more {
			break
		}
	}
	if skip >= n {
		skip = 0
	}
	m := copy(t[:trackPCs], pcs[skip:n])
	clear(t[m:trackPCs])
	t[trackPCs] = uintptr(time.Now().UnixNano())
	t[trackPCs+1] = uintptr(goid.Get())
	t[trackPCs+2] = uintptr(procID())
}

// checkTaken checks an object a debug allocation took from its slab: it
// must be free (state), its poison intact. It returns the problem, or "".
func (k *kmemCache) checkTaken(addr uintptr) string {
	switch *k.state(addr) {
	case redInactive:
	case redActive:
		return "Freelist corrupted" // an allocated object on the freelist
	default:
		return "Redzone overwritten"
	}
	if k.debug&Poison != 0 {
		b := unsafe.Slice((*byte)(ptr(addr)), k.metaOff)
		for i, x := range b[:len(b)-1] {
			if x != poisonFree {
				return fmt.Sprintf("Poison overwritten at offset %d", i)
			}
		}
		if b[len(b)-1] != poisonEnd {
			return "Poison overwritten at the end"
		}
	}
	return ""
}

// allocDebug is every allocation of a debug cache: an object straight
// from a slab of node, checked, marked allocated and tracked. A damaged
// object is reported and quarantined, and another taken.
func (c *Cache) allocDebug(node int, gfp GFP) (unsafe.Pointer, error) {
	k := c.c
	if err := c.usable(); err != nil {
		return nil, err
	}
	specific := gfp&ThisNode != 0 || node != -1
	if node == -1 {
		node = k.callerNode()
	}
	for {
		addr, err := k.allocFromNode(c.name, node, gfp, specific)
		if err != nil {
			return nil, err
		}
		if p := k.checkTaken(addr); p != "" && k.debug&(ConsistencyChecks|RedZone|Poison) != 0 {
			k.report(p, addr)
			k.quarantine(addr)
			continue // quarantined: it stays allocated, never handed out
		}
		*k.state(addr) = redActive
		if k.debug&RedZone != 0 {
			k.fillSlack(addr)
		}
		if k.debug&StoreUser != 0 {
			k.record(addr, false)
		}
		if k.debug&Trace != 0 {
			k.a.log.Info("TRACE "+k.name+" alloc", "addr", fmt.Sprintf("%#x", addr), "inuse", k.objectSize.Load())
		}
		if k.acct || k.initAlloc {
			k.taken(addr)
		}
		if gfp&Zero != 0 {
			k.zeroObj(addr)
		}
		return ptr(addr), nil
	}
}

// freeDebug is every free of a debug cache, after the free path's
// validation (a slab object of the cache). Under the node's list_lock —
// so that two racing frees of one object cannot both pass — the object
// must be allocated (else "Object already free") with its red zone intact
// (the state word, and with RedZone the slack between the object's size
// and its metadata: else "Redzone overwritten", and it is quarantined);
// then it is tracked, poisoned, marked free and put back on its slab. The
// report is made after the lock is dropped.
func (c *Cache) freeDebug(h *slabHdr, addr uintptr) {
	k := c.c
	cn := k.nodes[h.node].Load()
	cn.listLock.Lock()
	problem := ""
	switch *k.state(addr) {
	case redActive:
		if k.debug&RedZone != 0 && !k.slackIntact(addr) {
			problem = "Redzone overwritten"
		}
	case redInactive:
		problem = "Object already free"
	default:
		problem = "Redzone overwritten"
	}
	var discard *slabHdr
	if problem == "Redzone overwritten" {
		k.quarantine(addr)
	} else if problem == "" {
		if k.debug&StoreUser != 0 {
			k.record(addr, true)
		}
		if k.debug&Poison != 0 {
			k.poison(addr)
		} else if k.initFree {
			k.zeroObj(addr)
		}
		*k.state(addr) = redInactive
		discard = k.putObjLocked(cn, k.a.headHdr(h.base), addr)
	}
	cn.listLock.Unlock()
	switch problem {
	case "":
		if k.debug&Trace != 0 {
			k.a.log.Info("TRACE "+k.name+" free", "addr", fmt.Sprintf("%#x", addr))
		}
		if discard != nil {
			k.discardSlab(discard)
		}
	case "Object already free":
		k.report(problem, addr)
		k.a.invalidFree(c.name, addr, "double free (object already free)")
	default:
		k.report(problem, addr)
	}
}

// fillSlack writes the red zone pattern over the bytes between the
// object's size and its metadata (the kernel's red zone after the object).
func (k *kmemCache) fillSlack(addr uintptr) {
	size := uintptr(k.objectSize.Load())
	b := unsafe.Slice((*byte)(ptr(addr+size)), k.metaOff-size)
	for i := range b {
		b[i] = 0xcc
	}
}

// slackIntact reports whether the slack still holds the red zone pattern.
func (k *kmemCache) slackIntact(addr uintptr) bool {
	size := uintptr(k.objectSize.Load())
	for _, x := range unsafe.Slice((*byte)(ptr(addr+size)), k.metaOff-size) {
		if x != 0xcc {
			return false
		}
	}
	return true
}

// quarantine takes a damaged object out of circulation: it stays
// allocated for good, its red zone restored (the kernel's restore_bytes),
// so that validation sees a consistent, if lost, object.
func (k *kmemCache) quarantine(addr uintptr) {
	*k.state(addr) = redActive
	if k.debug&RedZone != 0 {
		k.fillSlack(addr)
	}
	k.quarantined.Add(1)
}

// report reports a problem at addr in the kernel's shape.
func (k *kmemCache) report(kind string, addr uintptr) {
	var b strings.Builder
	line := strings.Repeat("=", 77)
	fmt.Fprintf(&b, "%s\nBUG %s (Not tainted): %s\n%s\n\n", line, k.name, kind, strings.Repeat("-", 77))
	if k.debug&StoreUser != 0 {
		for _, free := range []bool{false, true} {
			t := k.track(addr, free)
			if t[trackPCs] == 0 {
				continue
			}
			what := "Allocated"
			if free {
				what = "Freed"
			}
			age := time.Since(time.Unix(0, int64(t[trackPCs])))
			fmt.Fprintf(&b, "%s in %s age=%v cpu=%d pid=%d\n", what, frameName(t[0]), age.Round(time.Microsecond), t[trackPCs+2], t[trackPCs+1])
			frames := runtime.CallersFrames(trimPCs(t[:trackPCs]))
			for {
				f, more := frames.Next()
				fmt.Fprintf(&b, " %s+%#x %s:%d\n", f.Function, f.PC-f.Entry, f.File, f.Line)
				if !more {
					break
				}
			}
		}
	}
	if h := k.hdrAt(addr); h != nil {
		fmt.Fprintf(&b, "Slab %#x objects=%d used=%d fp=%#x\n", h.base, k.objectsOf(h), atomic.LoadUint32(&h.inuse), atomic.LoadUint32(&h.freelist))
	}
	fmt.Fprintf(&b, "Object %#x: %s\n", addr, hexBytes(addr, min(int(k.metaOff), 64)))
	fmt.Fprintf(&b, "Redzone %#x: %s\n", addr+k.metaOff, hexBytes(addr+k.metaOff, 8))
	r := &DebugReport{Cache: k.name, Kind: kind, Addr: addr, Text: b.String()}
	if f := k.a.onDebug; f != nil {
		f(r)
	} else {
		k.a.log.Error(r.Text)
	}
}

func trimPCs(pcs []uintptr) []uintptr {
	for i, pc := range pcs {
		if pc == 0 {
			return pcs[:i]
		}
	}
	return pcs
}

func frameName(pc uintptr) string {
	if pc == 0 {
		return "?"
	}
	f, _ := runtime.CallersFrames([]uintptr{pc}).Next()
	return fmt.Sprintf("%s+%#x", f.Function, f.PC-f.Entry)
}

func hexBytes(addr uintptr, n int) string {
	b := unsafe.Slice((*byte)(ptr(addr)), n)
	var s strings.Builder
	for i, x := range b {
		if i > 0 {
			s.WriteByte(' ')
		}
		fmt.Fprintf(&s, "%02x", x)
	}
	return s.String()
}
