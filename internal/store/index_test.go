package store

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestListingSnapshot checks that the cached listing of a directory is
// rebuilt after every change to its children, and only its own.
func TestListingSnapshot(t *testing.T) {
	type step struct {
		do   string // put, del, delpath, rewrite, sweep
		key  string
		ls   string
		want []string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"add a leaf", []step{
			{do: "put", key: "/wb/t/a", ls: "/wb/t", want: []string{"a"}},
			{do: "put", key: "/wb/t/c", ls: "/wb/t", want: []string{"a", "c"}},
			{do: "put", key: "/wb/t/b", ls: "/wb/t", want: []string{"a", "b", "c"}},
		}},
		{"rewrite keeps the listing", []step{
			{do: "put", key: "/wb/t/a", ls: "/wb/t", want: []string{"a"}},
			{do: "rewrite", key: "/wb/t/a", ls: "/wb/t", want: []string{"a"}},
		}},
		{"delete a leaf", []step{
			{do: "put", key: "/wb/t/a", ls: "/wb/t", want: []string{"a"}},
			{do: "put", key: "/wb/t/b", ls: "/wb/t", want: []string{"a", "b"}},
			{do: "del", key: "/wb/t/a", ls: "/wb/t", want: []string{"b"}},
			{do: "del", key: "/wb/t/b", ls: "/wb", want: []string{}},
		}},
		{"new and pruned directories show in the parent", []step{
			{do: "put", key: "/wb/t1/a", ls: "/wb", want: []string{"t1"}},
			{do: "put", key: "/wb/t2/a", ls: "/wb", want: []string{"t1", "t2"}},
			{do: "del", key: "/wb/t1/a", ls: "/wb", want: []string{"t2"}},
		}},
		{"delete path of a leaf and of a directory", []step{
			{do: "put", key: "/wb/t1/a", ls: "/wb/t1", want: []string{"a"}},
			{do: "put", key: "/wb/t1/b", ls: "/wb/t1", want: []string{"a", "b"}},
			{do: "put", key: "/wb/t2/a", ls: "/wb", want: []string{"t1", "t2"}},
			{do: "delpath", key: "/wb/t1/a", ls: "/wb/t1", want: []string{"b"}},
			{do: "delpath", key: "/wb/t1", ls: "/wb", want: []string{"t2"}},
		}},
		{"a name that is a key and a directory is listed once", []step{
			{do: "put", key: "/wb/t/a", ls: "/wb/t", want: []string{"a"}},
			{do: "put", key: "/wb/t/a/x", ls: "/wb/t", want: []string{"a"}},
			{do: "del", key: "/wb/t/a", ls: "/wb/t", want: []string{"a"}},
			{do: "del", key: "/wb/t/a/x", ls: "/wb/t", want: []string{}},
		}},
		{"keys differing by slashes are one name", []step{
			{do: "put", key: "/wb/t/a", ls: "/wb/t", want: []string{"a"}},
			{do: "put", key: "wb//t/a/", ls: "/wb/t", want: []string{"a"}},
			{do: "delpath", key: "/wb/t/a", ls: "/wb/t", want: []string{}},
		}},
		{"sweep removes expired names", []step{
			{do: "put", key: "/wb/t/old", ls: "/wb/t", want: []string{"old"}},
			{do: "sweep", key: "/wb/t/new", ls: "/wb/t", want: []string{"new"}},
		}},
		{"root-named keys are never listed", []step{
			{do: "put", key: "/", ls: "/", want: []string{}},
			{do: "put", key: "/a", ls: "/", want: []string{"a"}},
			{do: "delpath", key: "/", ls: "/", want: []string{}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Limits{})
			now := int64(1_000_000_000_000)
			s.now = func() int64 { return now }
			for i, st := range tt.steps {
				switch st.do {
				case "put", "rewrite":
					if err := s.Put(st.key, []byte(st.do)); err != nil {
						t.Fatal(err)
					}
				case "del":
					s.Delete(st.key)
				case "delpath":
					s.DeletePath(st.key)
				case "sweep":
					// Everything stored so far expires; st.key is written after.
					s.SetTTL(time.Second)
					now += int64(time.Minute)
					_ = s.Put(st.key, []byte("x"))
					s.Sweep()
				}
				before := s.Children(st.ls)
				if !slices.Equal(before, st.want) {
					t.Fatalf("step %d (%s %s): ls %s = %q, want %q", i, st.do, st.key, st.ls, before, st.want)
				}
				// A second listing with no change in between is the same slice.
				if again := s.Children(st.ls); len(again) > 0 && &again[0] != &before[0] {
					t.Fatalf("step %d: listing of %s was rebuilt without a change", i, st.ls)
				}
			}
			var keys []string
			_ = s.Snapshot(func(k string, _ []byte, _ time.Time) error { keys = append(keys, k); return nil })
			inIndex := s.idx.keys()
			slices.Sort(keys)
			slices.Sort(inIndex)
			if !slices.Equal(keys, inIndex) {
				t.Fatalf("map %q, index %q", keys, inIndex)
			}
		})
	}
}

// TestListingUnderConcurrentChange lists while writers add and remove
// children, for the race detector and to check every listing is sorted and
// distinct.
func TestListingUnderConcurrentChange(t *testing.T) {
	s := New(Limits{})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("/wb/t/n%d", (i*7+w)%50)
				if i%3 == 2 {
					s.Delete(key)
				} else {
					_ = s.Put(key, []byte("v"))
				}
			}
		})
	}
	for range 2000 {
		got := s.Children("/wb/t")
		if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Fatalf("listing not sorted and distinct: %q", got)
		}
	}
	close(stop)
	wg.Wait()
}

// TestListingIsNeverWrittenAfterHandout: a caller may still be encoding a
// listing while the directory changes; the slice it holds must not change.
func TestListingIsNeverWrittenAfterHandout(t *testing.T) {
	tests := []struct {
		name string
		keys int // in the directory before the listing
	}{
		{"small directory", 10},
		{"at the slice bound", leafSliceMax},
		{"beyond the slice bound", leafSliceMax + 5},
	}
	key := func(i int) string { return fmt.Sprintf("/wb/t/w%05d", i) }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Limits{})
			for i := 0; i < tt.keys; i += 2 { // even keys first, odd ones later
				_ = s.Put(key(i), []byte("v"))
			}
			held := s.Children("/wb/t")
			kept := slices.Clone(held)
			for i := 1; i < tt.keys; i += 2 {
				_ = s.Put(key(i), []byte("v"))
			}
			got := s.Children("/wb/t")
			if len(got) != tt.keys || !slices.IsSorted(got) {
				t.Fatalf("after adding: %d names, sorted %v", len(got), slices.IsSorted(got))
			}
			held2 := got
			kept2 := slices.Clone(got)
			for i := 0; i < tt.keys; i += 3 {
				s.Delete(key(i))
			}
			if !slices.Equal(held, kept) || !slices.Equal(held2, kept2) {
				t.Fatal("a listing already handed out was modified")
			}
			var want []string
			for i := range tt.keys {
				if i%3 != 0 {
					want = append(want, fmt.Sprintf("w%05d", i))
				}
			}
			if got := s.Children("/wb/t"); !slices.Equal(got, want) {
				t.Fatalf("after deleting: %d names, want %d", len(got), len(want))
			}
			if n := s.DeletePath("/wb/t"); n != len(want) || s.Keys() != 0 {
				t.Fatalf("delete path removed %d of %d, %d keys left", n, len(want), s.Keys())
			}
		})
	}
}
