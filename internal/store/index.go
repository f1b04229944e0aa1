package store

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// index is the directory tree over the stored keys, so that listing the
// children of a path costs O(depth) (a cached answer) and deleting a path
// costs O(keys under it), never a scan of every key. Keys are split on '/'
// with empty components dropped, which matches Storm's prefix-and-split
// listing for every path Storm itself writes.
//
// Only directories are nodes. A key is recorded in its parent directory as
// a name in a sorted slice (a substring of the stored key: no copy, no node
// of its own), and that slice is also the directory's listing: with a
// million heartbeats, a node and a map slot per key were a third of the
// store's overhead. Listing it costs a pointer load, and Nimbus lists every
// topology every few seconds.
//
// Lock order: a shard's lock, then the index's. Only key creation and
// deletion touch the index; rewriting an existing key (the steady state of
// heartbeats) never does, so cached listings stay valid between topology
// changes.
type index struct {
	mu   sync.RWMutex
	root node
	// bare holds keys with no components ("/", "//"): they name the root
	// itself, are listed nowhere and go with DeletePath of the root.
	bare map[string]struct{}
}

type node struct {
	// dirs are the child directories: names with keys below them. Names
	// are substrings of a stored key.
	dirs map[string]*node
	// leaves are the sorted names of the canonical keys ("/a/b") ending
	// directly below this node, while there are at most leafSliceMax of
	// them; big holds them beyond that, where inserting into a slice would
	// cost too much. Keys are recovered as the node's path plus the name.
	leaves []string
	big    map[string]struct{}
	// leavesShared is set when leaves was handed out as a listing: it is
	// then never written again, only replaced.
	leavesShared atomic.Bool
	// odd are the stored keys ending directly below this node that are not
	// canonical ("a/b", "/a//b/"), kept whole and keyed by their last
	// component, so every key shape costs one map operation. Keys sharing
	// a name differ in redundant slashes, so their number is bounded by
	// the key length.
	odd map[string][]string
	// keys counts the stored keys at or below this node; a node whose count
	// drops to zero is pruned, so listings never show empty directories.
	keys int
	// names is the sorted, distinct child names, built by the first listing
	// after a child was added or removed and shared by every listing until
	// the next change. Written under the index's read lock by listers
	// (who all build the same answer), cleared under its write lock.
	names atomic.Pointer[[]string]
}

// components iterates over the non-empty '/'-separated parts of p. The
// yielded strings share p's memory, so a node name costs no copy of the key.
func components(p string, yield func(string) bool) {
	for p != "" {
		i := strings.IndexByte(p, '/')
		var part string
		if i < 0 {
			part, p = p, ""
		} else {
			part, p = p[:i], p[i+1:]
		}
		if part != "" && !yield(part) {
			return
		}
	}
}

// split returns the parent directory's components of p and p's last
// component ("" when p has none).
func split(p string) (dirs []string, last string) {
	components(p, func(part string) bool {
		if last != "" {
			dirs = append(dirs, last)
		}
		last = part
		return true
	})
	return dirs, last
}

// leafSliceMax bounds the sorted slice of names in one directory: inserting
// costs a copy of half of it.
const leafSliceMax = 4096

// canonical reports whether key is "/a/b/c": the form Storm writes, which
// the index can rebuild from a directory's path and a name.
func canonical(key string) bool {
	return len(key) > 1 && key[0] == '/' && key[len(key)-1] != '/' && !strings.Contains(key, "//")
}

func (n *node) invalidate() { n.names.Store(nil) }

func (n *node) addLeaf(name string) {
	if n.big != nil {
		n.big[name] = struct{}{}
		return
	}
	i, found := slices.BinarySearch(n.leaves, name)
	switch {
	case found:
	case len(n.leaves) >= leafSliceMax:
		n.big = make(map[string]struct{}, len(n.leaves)+1)
		for _, l := range n.leaves {
			n.big[l] = struct{}{}
		}
		n.big[name] = struct{}{}
		n.leaves = nil
		n.leavesShared.Store(false)
	case n.leavesShared.Load():
		// Listers may be reading the old slice: copy, never write it.
		l := make([]string, 0, len(n.leaves)+1+len(n.leaves)/8)
		l = append(append(append(l, n.leaves[:i]...), name), n.leaves[i:]...)
		n.leaves = l
		n.leavesShared.Store(false)
	default:
		n.leaves = slices.Insert(n.leaves, i, name)
	}
}

func (n *node) removeLeaf(name string) bool {
	if n.big != nil {
		if _, ok := n.big[name]; !ok {
			return false
		}
		delete(n.big, name)
		if len(n.big) == 0 {
			n.big = nil // maps never shrink; drop an emptied one
		}
		return true
	}
	i, found := slices.BinarySearch(n.leaves, name)
	switch {
	case !found:
		return false
	case len(n.leaves) == 1:
		n.leaves = nil
		n.leavesShared.Store(false)
	case n.leavesShared.Load():
		n.leaves = append(append(make([]string, 0, len(n.leaves)-1), n.leaves[:i]...), n.leaves[i+1:]...)
		n.leavesShared.Store(false)
	default:
		n.leaves = slices.Delete(n.leaves, i, i+1)
	}
	return true
}

func (n *node) hasLeaf(name string) bool {
	if n.big != nil {
		_, ok := n.big[name]
		return ok
	}
	_, found := slices.BinarySearch(n.leaves, name)
	return found
}

// add records key (already stored in its shard). Key must be the stored,
// owned copy: names and leaves share its memory.
func (x *index) add(key string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := &x.root
	n.keys++
	dirs, last := split(key)
	if last == "" {
		if x.bare == nil {
			x.bare = map[string]struct{}{}
		}
		x.bare[key] = struct{}{}
		return
	}
	for _, part := range dirs {
		c := n.dirs[part]
		if c == nil {
			if n.dirs == nil {
				n.dirs = make(map[string]*node, 1)
			}
			c = &node{}
			n.dirs[part] = c
			n.invalidate()
		}
		c.keys++
		n = c
	}
	if canonical(key) {
		n.addLeaf(last)
	} else {
		if n.odd == nil {
			n.odd = map[string][]string{}
		}
		n.odd[last] = append(n.odd[last], key)
	}
	n.invalidate()
}

// remove forgets key, pruning directories left empty.
func (x *index) remove(key string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.removeLocked(key)
}

func (x *index) removeLocked(key string) {
	dirs, last := split(key)
	if last == "" {
		if _, ok := x.bare[key]; ok {
			delete(x.bare, key)
			x.root.keys--
		}
		return
	}
	path := make([]*node, 0, len(dirs))
	n := &x.root
	for _, part := range dirs {
		path = append(path, n)
		if n = n.dirs[part]; n == nil {
			return
		}
	}
	if canonical(key) {
		if !n.removeLeaf(last) {
			return
		}
	} else {
		same := n.odd[last]
		i := slices.Index(same, key)
		if i < 0 {
			return
		}
		if len(same) == 1 {
			delete(n.odd, last)
		} else {
			n.odd[last] = slices.Delete(same, i, i+1)
		}
		if len(n.odd) == 0 {
			n.odd = nil // maps never shrink; drop an emptied one
		}
	}
	n.invalidate()
	n.keys--
	for j := len(path) - 1; j >= 0; j-- {
		parent := path[j]
		if n.keys == 0 {
			delete(parent.dirs, dirs[j])
			parent.invalidate()
		}
		parent.keys--
		n = parent
	}
}

// find returns the directory node for path, or nil. The caller holds x.mu.
func (x *index) find(path string) *node {
	n := &x.root
	components(path, func(part string) bool {
		n = n.dirs[part]
		return n != nil
	})
	return n
}

// children returns the sorted names directly below path that have keys
// under them. The slice is shared by every caller until the next change
// below path: callers must not modify it.
func (x *index) children(path string) []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	n := x.find(path)
	if n == nil {
		return []string{}
	}
	if p := n.names.Load(); p != nil {
		return *p
	}
	var names []string
	if len(n.dirs) == 0 && len(n.odd) == 0 && n.big == nil {
		// The usual directory of heartbeats: its names are the listing.
		names = slices.Clip(n.leaves)
		if names == nil {
			names = []string{}
		}
		n.leavesShared.Store(true)
	} else {
		names = make([]string, 0, len(n.dirs)+len(n.leaves)+len(n.big)+len(n.odd))
		for name := range n.dirs {
			names = append(names, name)
		}
		names = append(names, n.leaves...)
		for name := range n.big {
			names = append(names, name)
		}
		for name := range n.odd {
			names = append(names, name)
		}
		slices.Sort(names)
		// A name can be both a directory and a key.
		names = slices.Clip(slices.Compact(names))
	}
	n.names.Store(&names)
	return names
}

// detach takes everything strictly below path out of the index in
// O(depth) and returns it as a subtree the caller owns (nil when path has
// nothing below it) with its path prefix ("" for the root), and the keys
// naming path itself, which stay indexed. Nobody else reaches a detached
// subtree: keys written below path from now on go into a new one.
func (x *index) detach(path string) (self []string, sub *node, prefix string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	dirs, last := split(path)
	if last == "" {
		for key := range x.bare {
			self = append(self, key)
		}
		r := &x.root
		if r.keys == len(x.bare) {
			return self, nil, ""
		}
		sub = &node{dirs: r.dirs, leaves: r.leaves, big: r.big, odd: r.odd, keys: r.keys - len(x.bare)}
		r.dirs, r.leaves, r.big, r.odd, r.keys = nil, nil, nil, nil, len(x.bare)
		r.leavesShared.Store(false)
		r.invalidate()
		return self, sub, ""
	}
	nodes := []*node{&x.root}
	n := &x.root
	for _, part := range dirs {
		if n = n.dirs[part]; n == nil {
			return nil, nil, ""
		}
		nodes = append(nodes, n)
	}
	prefix = "/" + strings.Join(append(dirs, last), "/")
	if n.hasLeaf(last) {
		self = append(self, prefix)
	}
	self = append(self, n.odd[last]...)
	sub = n.dirs[last]
	if sub == nil {
		return self, nil, ""
	}
	delete(n.dirs, last)
	n.invalidate()
	// nodes[i] is nodes[i-1]'s child dirs[i-1]; prune those left empty.
	for i := len(nodes) - 1; i >= 0; i-- {
		nodes[i].keys -= sub.keys
		if i > 0 && nodes[i].keys == 0 {
			delete(nodes[i-1].dirs, dirs[i-1])
			nodes[i-1].invalidate()
		}
	}
	return self, sub, prefix
}

// walk calls fn with every key in a detached subtree whose path is prefix.
// It takes no lock: the caller owns the subtree.
func (n *node) walk(prefix string, fn func(key string)) {
	for _, name := range n.leaves {
		fn(prefix + "/" + name)
	}
	for name := range n.big {
		fn(prefix + "/" + name)
	}
	for _, keys := range n.odd {
		for _, key := range keys {
			fn(key)
		}
	}
	for name, c := range n.dirs {
		c.walk(prefix+"/"+name, fn)
	}
}

// removeAll forgets keys with one hold of the lock.
func (x *index) removeAll(keys []string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, key := range keys {
		x.removeLocked(key)
	}
}
