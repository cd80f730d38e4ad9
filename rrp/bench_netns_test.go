//go:build linux

package rrp

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkNetns is BenchmarkLoopback (same modes) between two network namespaces over
// a bridge (needs root).
func BenchmarkNetns(b *testing.B) {
	lab := newNetLab(b, 2, 1)
	for _, mode := range benchModes {
		b.Run(mode.name, func(b *testing.B) {
			cfgs := lab.configs(UDPU, Passive)
			for i := range cfgs {
				if mode.insecure {
					cfgs[i].Key, cfgs[i].Insecure = nil, true
				}
				cfgs[i].NoOffload = mode.noOffload
				cfgs[i].LinkTimeout = time.Second
			}
			runThroughput(b, lab.start(b, cfgs), 64)
		})
	}
}

// BenchmarkNetnsRing is BenchmarkRing on 3 namespaces over a bridge.
func BenchmarkNetnsRing(b *testing.B) {
	lab := newNetLab(b, 3, 1)
	for _, perVisit := range []int{17, 50} {
		for _, mode := range benchModes {
			b.Run(fmt.Sprintf("%d/%s", perVisit, mode.name), func(b *testing.B) {
				cfgs := lab.configs(UDPU, Passive)
				for i := range cfgs {
					if mode.insecure {
						cfgs[i].Key, cfgs[i].Insecure = nil, true
					}
					cfgs[i].NoOffload = mode.noOffload
					cfgs[i].LinkTimeout = time.Second
				}
				runRing(b, lab.start(b, cfgs), perVisit)
			})
		}
	}
}
