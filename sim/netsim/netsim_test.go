package netsim

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/totem-gcs/totem/totem"
)

func newNet(t *testing.T, seed uint64, p Params) *Network {
	t.Helper()
	n, err := New(rand.New(rand.NewPCG(seed, 0)), p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

var base = Params{MinDelay: 100 * time.Microsecond, MaxDelay: 2 * time.Millisecond}

func TestDelayBounds(t *testing.T) {
	n := newNet(t, 1, base)
	for i := range 1000 {
		now := time.Duration(i) * time.Millisecond
		arr, fate := n.Send(now, 1, 2, nil)
		if fate != Delivered || len(arr) != 1 {
			t.Fatalf("fate %v arrivals %v on a perfect network", fate, arr)
		}
		if d := arr[0] - now; d < base.MinDelay || d > base.MaxDelay {
			t.Fatalf("delay %v outside [%v,%v]", d, base.MinDelay, base.MaxDelay)
		}
	}
}

func TestLossDupRates(t *testing.T) {
	p := base
	p.Loss, p.Dup = 0.2, 0.1
	n := newNet(t, 2, p)
	const total = 20000
	for range total {
		n.Send(0, 1, 2, nil)
	}
	s := n.Stats()
	if lost := float64(s.Lost) / total; lost < 0.17 || lost > 0.23 {
		t.Errorf("loss rate %.3f, want about 0.2", lost)
	}
	if dup := float64(s.Duplicated) / float64(s.Delivered); dup < 0.08 || dup > 0.12 {
		t.Errorf("dup rate %.3f, want about 0.1", dup)
	}
}

func TestPartitionAndAsymmetricLoss(t *testing.T) {
	n := newNet(t, 3, base)
	n.Partition([]totem.NodeID{1, 2}, []totem.NodeID{3})
	if _, f := n.Send(0, 1, 3, nil); f != LostPartition {
		t.Errorf("1->3 across partition: %v", f)
	}
	if _, f := n.Send(0, 1, 2, nil); f != Delivered {
		t.Errorf("1->2 same side: %v", f)
	}
	if _, f := n.Send(0, 3, 4, nil); f != LostPartition {
		t.Errorf("3->4: node 4, in no group, is not with 3: %v", f)
	}
	if _, f := n.Send(0, 4, 5, nil); f != Delivered {
		t.Errorf("4->5: nodes in no group are together: %v", f)
	}
	n.Heal()
	n.SetLinkLoss(1, 2, 1)
	if n.Reachable(1, 2) || !n.Reachable(2, 1) {
		t.Error("asymmetric cut should block 1->2 only")
	}
	if _, f := n.Send(0, 1, 2, nil); f != LostLink {
		t.Errorf("1->2 on cut link: %v", f)
	}
	if _, f := n.Send(0, 2, 1, nil); f != Delivered {
		t.Errorf("2->1: %v", f)
	}
	n.Heal()
	if _, f := n.Send(0, 1, 2, nil); f != Delivered {
		t.Errorf("after heal: %v", f)
	}
}

func TestDeterministic(t *testing.T) {
	p := base
	p.Loss, p.Dup, p.Reorder, p.ReorderDelay = 0.1, 0.1, 0.1, 5*time.Millisecond
	run := func() []time.Duration {
		n := newNet(t, 42, p)
		var all []time.Duration
		for i := range 500 {
			all, _ = n.Send(time.Duration(i), 1, 2, all)
		}
		return all
	}
	a, b := run(), run()
	if len(a) != len(b) {
		t.Fatal("lengths differ")
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("arrival %d differs: %v vs %v", i, a[i], b[i])
		}
	}
}

func TestValidate(t *testing.T) {
	if _, err := New(rand.New(rand.NewPCG(0, 0)), Params{}); err == nil {
		t.Error("zero params accepted")
	}
	p := base
	p.Loss = 1.5
	if _, err := New(rand.New(rand.NewPCG(0, 0)), p); err == nil {
		t.Error("loss 1.5 accepted")
	}
}
