// Package sched is the simulator's event queue: events ordered by virtual
// time, ties broken by the order in which they were scheduled, so that one
// seed always replays the same schedule.
package sched

import "time"

// Queue holds events of type E ordered by time. The zero value is an empty
// queue ready to use. It is not safe for concurrent use.
type Queue[E any] struct {
	items []item[E]
	seq   uint64
}

type item[E any] struct {
	at  time.Duration
	seq uint64
	ev  E
}

func (a item[E]) before(b item[E]) bool {
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}

// Len returns the number of events waiting.
func (q *Queue[E]) Len() int { return len(q.items) }

// Push schedules ev at time at. Events at the same time come out in the
// order they were pushed.
func (q *Queue[E]) Push(at time.Duration, ev E) {
	q.seq++
	q.items = append(q.items, item[E]{at: at, seq: q.seq, ev: ev})
	i := len(q.items) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !q.items[i].before(q.items[parent]) {
			break
		}
		q.items[i], q.items[parent] = q.items[parent], q.items[i]
		i = parent
	}
}

// Next returns the time of the earliest event; ok is false if the queue is
// empty.
func (q *Queue[E]) Next() (at time.Duration, ok bool) {
	if len(q.items) == 0 {
		return 0, false
	}
	return q.items[0].at, true
}

// Pop removes and returns the earliest event; ok is false if the queue is
// empty.
func (q *Queue[E]) Pop() (at time.Duration, ev E, ok bool) {
	if len(q.items) == 0 {
		return 0, ev, false
	}
	top := q.items[0]
	last := len(q.items) - 1
	q.items[0] = q.items[last]
	var zero item[E]
	q.items[last] = zero // drop references held by the event
	q.items = q.items[:last]
	i, n := 0, last
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && q.items[l].before(q.items[m]) {
			m = l
		}
		if r < n && q.items[r].before(q.items[m]) {
			m = r
		}
		if m == i {
			break
		}
		q.items[i], q.items[m] = q.items[m], q.items[i]
		i = m
	}
	return top.at, top.ev, true
}
