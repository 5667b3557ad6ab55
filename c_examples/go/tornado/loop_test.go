package tornado

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestVersion(t *testing.T) {
	if strings.Count(Version(), ".") != 2 {
		t.Fatalf("version %q", Version())
	}
	if VersionNumber() != HeaderVersionNumber {
		t.Fatalf("library %d, header %d", VersionNumber(), HeaderVersionNumber)
	}
}

func TestCallbacksTimersAndStop(t *testing.T) {
	var order []string
	err := Run(func(l *Loop) {
		if _, err := l.CallLater(20*time.Millisecond, func() { order = append(order, "timer"); l.Stop() }); err != nil {
			t.Error(err)
		}
		id, _ := l.CallLater(time.Hour, func() { order = append(order, "never") })
		if err := l.RemoveTimeout(id); err != nil {
			t.Error(err)
		}
		_ = l.AddCallback(func() { order = append(order, "callback") })
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(order, ",") != "callback,timer" {
		t.Fatalf("order %v", order)
	}
}

func TestStopAndCallbacksFromOtherGoroutines(t *testing.T) {
	var count int64
	err := Run(func(l *Loop) {
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 100; i++ {
					_ = l.AddCallback(func() { atomic.AddInt64(&count, 1) })
				}
			}()
		}
		go func() {
			wg.Wait()
			_ = l.AddCallback(l.Stop)
		}()
	})
	if err != nil {
		t.Fatal(err)
	}
	if atomic.LoadInt64(&count) != 800 {
		t.Fatalf("ran %d of 800 callbacks", count)
	}
}

func TestLoopBadArguments(t *testing.T) {
	_ = Run(func(l *Loop) {
		defer l.Stop()
		if _, err := l.CallLater(-time.Second, func() {}); err == nil {
			t.Error("a negative delay must fail")
		} else if e, ok := err.(*Error); !ok || e.Code == 0 {
			t.Errorf("error %v", err)
		}
	})
}
