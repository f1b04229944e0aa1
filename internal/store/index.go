package store

import (
	"strings"
	"sync"
)

// index is the directory tree over the stored keys, so that listing the
// children of a path costs O(depth + children) and deleting a path costs
// O(keys under it), never a scan of every key. Keys are split on '/' with
// empty components dropped, which matches Storm's prefix-and-split listing
// for every path Storm itself writes.
//
// Lock order: a shard's lock, then the index's. Only key creation and
// deletion touch the index; rewriting an existing key (the steady state of
// heartbeats) never does.
type index struct {
	mu   sync.RWMutex
	root node
}

type node struct {
	children map[string]*node
	// keys counts the stored keys at or below this node; a node whose count
	// drops to zero is pruned, so listings never show empty directories.
	keys int
	// ids holds the exact stored keys that end at this node. Usually one;
	// more only when keys differ by redundant slashes ("/a//b" and "/a/b").
	ids []string
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

// add records key (already stored in its shard). Key must be the stored,
// owned copy: node names are substrings of it.
func (x *index) add(key string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := &x.root
	n.keys++
	components(key, func(part string) bool {
		c := n.children[part]
		if c == nil {
			if n.children == nil {
				n.children = make(map[string]*node, 1)
			}
			c = &node{}
			n.children[part] = c
		}
		c.keys++
		n = c
		return true
	})
	n.ids = append(n.ids, key)
}

// remove forgets key, pruning directories left empty.
func (x *index) remove(key string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	path := make([]*node, 0, 8)
	names := make([]string, 0, 8)
	n := &x.root
	found := true
	components(key, func(part string) bool {
		path = append(path, n)
		names = append(names, part)
		n = n.children[part]
		found = n != nil
		return found
	})
	if !found {
		return
	}
	i := indexOf(n.ids, key)
	if i < 0 {
		return
	}
	n.ids = append(n.ids[:i], n.ids[i+1:]...)
	if len(n.ids) == 0 {
		n.ids = nil
	}
	n.keys--
	for j := len(path) - 1; j >= 0; j-- {
		parent := path[j]
		if n.keys == 0 {
			delete(parent.children, names[j])
		}
		parent.keys--
		n = parent
	}
}

func indexOf(ids []string, key string) int {
	for i, id := range ids {
		if id == key {
			return i
		}
	}
	return -1
}

// find returns the node for path, or nil. The caller holds x.mu.
func (x *index) find(path string) *node {
	n := &x.root
	components(path, func(part string) bool {
		n = n.children[part]
		return n != nil
	})
	return n
}

// children returns the names directly below path that have keys under them.
func (x *index) children(path string) []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	n := x.find(path)
	if n == nil {
		return []string{}
	}
	out := make([]string, 0, len(n.children))
	for name := range n.children {
		out = append(out, name)
	}
	return out
}

// under returns every stored key at or below path.
func (x *index) under(path string) []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	n := x.find(path)
	if n == nil {
		return nil
	}
	out := make([]string, 0, n.keys)
	var walk func(*node)
	walk = func(n *node) {
		out = append(out, n.ids...)
		for _, c := range n.children {
			walk(c)
		}
	}
	walk(n)
	return out
}
