package lockdep

import (
	"sync"
	"testing"
)

// BenchmarkMutexPair measures one Lock/Unlock pair.
func BenchmarkMutexPair(b *testing.B) {
	b.Run("sync.Mutex", func(b *testing.B) {
		var m sync.Mutex
		b.ReportAllocs()
		for b.Loop() {
			m.Lock()
			m.Unlock()
		}
	})
	b.Run("lockdep-off", func(b *testing.B) {
		was := Enabled()
		Disable()
		defer func() {
			if was {
				Enable()
			}
		}()
		m := NewMutex(NewClass("bench_off"))
		b.ReportAllocs()
		for b.Loop() {
			m.Lock()
			m.Unlock()
		}
	})
	b.Run("lockdep-on", func(b *testing.B) {
		Enable()
		outer := NewMutex(NewClass("bench_outer"))
		m := NewMutex(NewClass("bench_on"))
		outer.Lock() // a cached two-lock chain, the common case
		b.ReportAllocs()
		for b.Loop() {
			m.Lock()
			m.Unlock()
		}
		outer.Unlock()
	})
}

// BenchmarkReadPair measures one read lock/unlock pair of the per-P
// rwsem against sync.RWMutex, by one goroutine and by GOMAXPROCS.
func BenchmarkReadPair(b *testing.B) {
	was := Enabled()
	Disable()
	defer func() {
		if was {
			Enable()
		}
	}()
	b.Run("PerPRWSem/1", func(b *testing.B) {
		s := NewPerPRWSem(NewClass("bench_sem"))
		b.ReportAllocs()
		for b.Loop() {
			s.RLock()
			s.RUnlock()
		}
	})
	b.Run("sync.RWMutex/1", func(b *testing.B) {
		var rw sync.RWMutex
		b.ReportAllocs()
		for b.Loop() {
			rw.RLock()
			rw.RUnlock()
		}
	})
	b.Run("PerPRWSem/parallel", func(b *testing.B) {
		s := NewPerPRWSem(NewClass("bench_sem"))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				s.RLock()
				s.RUnlock()
			}
		})
	})
	b.Run("sync.RWMutex/parallel", func(b *testing.B) {
		var rw sync.RWMutex
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				rw.RLock()
				rw.RUnlock()
			}
		})
	})
	b.Run("PerPRWSem/write", func(b *testing.B) {
		s := NewPerPRWSem(NewClass("bench_sem"))
		for b.Loop() {
			s.Lock()
			s.Unlock()
		}
	})
}
