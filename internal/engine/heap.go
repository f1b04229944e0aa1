package engine

// deadlineHeap is a loop's connections with a deadline, earliest first.
// It changes only when a deadline is set or lifted, never per request in
// the steady state.
type deadlineHeap []*Conn

// schedule puts c in the heap by its earliest deadline, or takes it out
// when it has none.
func (l *loop) schedule(c *Conn) {
	dl := int64(0)
	for _, d := range [...]int64{c.fdl, c.rdl, c.wdl} {
		if d != 0 && (dl == 0 || d < dl) {
			dl = d
		}
	}
	if dl == 0 || c.closed {
		l.heapRemove(c)
		return
	}
	c.dl = dl
	h := &l.heap
	if c.hidx < 0 {
		c.hidx = len(*h)
		*h = append(*h, c)
		h.up(c.hidx)
		return
	}
	if !h.down(c.hidx) {
		h.up(c.hidx)
	}
}

func (l *loop) heapRemove(c *Conn) {
	h := &l.heap
	i := c.hidx
	if i < 0 {
		return
	}
	last := len(*h) - 1
	if i != last {
		h.swap(i, last)
	}
	(*h)[last] = nil
	*h = (*h)[:last]
	c.hidx = -1
	if i != last {
		if !h.down(i) {
			h.up(i)
		}
	}
}

func (h deadlineHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx = i
	h[j].hidx = j
}

func (h deadlineHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if h[p].dl <= h[i].dl {
			return
		}
		h.swap(i, p)
		i = p
	}
}

// down sifts i down and reports whether it moved.
func (h deadlineHeap) down(i int) bool {
	start := i
	n := len(h)
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && h[r].dl < h[c].dl {
			c = r
		}
		if h[i].dl <= h[c].dl {
			break
		}
		h.swap(i, c)
		i = c
	}
	return i > start
}
