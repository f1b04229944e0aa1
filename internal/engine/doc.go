// Package engine serves many TCP connections from a few event loops: each
// loop waits on one epoll instance (edge-triggered) for all of its
// connections, reads every ready connection into one loop-owned buffer,
// hands the bytes to a Handler and writes the answers, so an idle
// connection costs no goroutine and no buffer — only its Conn (~200 B).
//
// # Loops and threads
//
// New starts Config.Loops loops (default GOMAXPROCS/2). When GOMAXPROCS
// leaves a P beside the loops, an idle loop blocks its thread in epoll_wait
// through a raw system call (WaitBlock): the runtime is not told, so the
// loop keeps its P and a wake-up is one context switch, as in a C event
// loop; the runtime's preemption signal interrupts the wait when the
// collector or the scheduler needs the P. (Through syscall.Syscall the
// runtime's monitor would take the P away and wake other threads: 20 % of
// the CPU per request in an A/B.) Otherwise the loop parks its goroutine in
// Go's netpoller, where its epoll fd is registered (WaitPark), which frees
// the P while idle but costs a second epoll_wait and the scheduler per
// wake-up: 0.39 epoll_waits per answer against 0.13–0.19 blocked. A
// blocking loop that saw no event for 20 ms waits through syscall.Syscall
// until the next one, so that an idle daemon holds no P and costs no CPU.
//
// Every callback of a connection runs on its loop's goroutine, one at a
// time, so a Handler needs no locks for per-connection state. A callback must not block: it delays
// every other connection of its loop. Methods of Conn may be called only
// from that connection's callbacks, except those marked as safe from any
// goroutine (Resume, CloseAsync, Post).
//
// # Reading
//
// A connection is read when epoll reports it readable: once into the loop's
// buffer (Config.ReadBufferSize), then again only if that read filled the
// buffer (a short read means the socket was empty at that moment, and bytes
// arriving later raise a new edge), so a request costs one read and no
// EAGAIN read. OnData(c, in) gets in = the bytes kept from before followed
// by the new ones, and returns how many it consumed. The rest — normally the
// start of a frame not yet complete — is kept by the engine in a buffer of
// its own that is given back as soon as nothing remains: an idle connection
// holds no input buffer. in is valid only during the call: a Handler that
// keeps bytes (a frame larger than the read buffer, say) copies them and
// reports them consumed, and tells the engine with SetPartial that a frame
// is under way. A Handler must consume something or Pause when in fills the
// whole read buffer; otherwise the connection ends with ErrInputFull.
//
// # Back-pressure
//
// Pause stops reading a connection (no system call: the edge is remembered);
// whatever OnData left unconsumed is kept. Resume (from any goroutine)
// offers the kept bytes again and reads on. A memory budget uses this: a
// connection that cannot reserve pauses, and is resumed when memory comes
// back.
//
// # Writing
//
// A Handler appends answers to Out() and passes the result to SetOut. Out()
// is then a loop-owned buffer shared by the batch (every connection epoll
// reported at once): each connection's answers are one segment of it,
// written with one write per connection once the whole batch has been
// read (or earlier, at Flush), as redis does, so the peers' next requests
// arrive together and one wake-up serves many. The answers of a connection
// whose write succeeds at once never need a buffer of its own.
// What the socket does not take is copied to a buffer of the connection's
// (counted in Pending and Engine.PendingBytes, so a budget can count answers
// not yet written) and written when epoll reports the socket writable; then
// OnWritten is called. Writev writes bytes that must not be copied (a large
// stored value) in the same write, copying only what the socket refused.
//
// # Deadlines
//
// Three per connection, kept in a per-loop heap (no Go timer per
// connection; the heap changes only when a deadline is set or cleared) and
// checked after each wait, which is bounded by the earliest one:
//   - the frame deadline, Config.FrameTimeout after bytes of an incomplete
//     frame were kept (or SetPartial(true)), lifted when none are: a frame
//     that started must finish in time, the idle wait between frames has
//     no deadline;
//   - the read deadline, set by the Handler (SetReadDeadline; e.g. a
//     handshake must finish by then);
//   - the write deadline, Config.WriteTimeout after a write left bytes
//     pending or the socket last took some of them, lifted when all are
//     written: a peer that stops reading its answers is closed.
//
// When one passes the connection is closed with ErrFrameTimeout,
// ErrReadTimeout or ErrWriteTimeout.
//
// # Adopting, draining, closing
//
// Listen serves accepts on an already open listening socket (systemd socket
// activation); Adopt serves an already connected one, with bytes a previous
// owner read from it but did not handle (a restart hand-over). Neither fd is
// duplicated; the engine closes adopted and accepted sockets, never
// listeners.
//
// Drain stops accepting (after taking the connections already queued on the
// listeners), reads every connection's socket to its end once, answers
// every whole request received, writes all pending answers, then closes
// each connection with ErrDrained; OnClose may duplicate Fd() and take
// Unread() to hand the connection over. A paused connection is drained
// when resumed. When ctx ends first, the rest are closed with ErrClosed.
//
// OnClose is called exactly once for every connection whose OnOpen
// succeeded, with the reason: io.EOF (clean end between frames),
// io.ErrUnexpectedEOF (end inside a frame), a timeout, ErrDrained,
// ErrClosed, the error OnData returned, or a socket error.
package engine
