package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	rpprof "runtime/pprof"
)

// startProfiles starts the debug profiles asked for and returns the
// function that finishes them (at exit).
func startProfiles(cpu, mem, addr string, log *slog.Logger) (func(), error) {
	var stops []func()
	stop := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	if cpu != "" {
		f, err := os.Create(cpu)
		if err != nil {
			return nil, err
		}
		if err := rpprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, err
		}
		stops = append(stops, func() { rpprof.StopCPUProfile(); f.Close() })
	}
	if mem != "" {
		stops = append(stops, func() {
			f, err := os.Create(mem)
			if err != nil {
				log.Error("heap profile", "err", err)
				return
			}
			defer f.Close()
			runtime.GC()
			if err := rpprof.WriteHeapProfile(f); err != nil {
				log.Error("heap profile", "err", err)
			}
		})
	}
	if addr != "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			stop()
			return nil, err
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			stop()
			return nil, fmt.Errorf("--pprof %s: serve profiles on a loopback address only", addr)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			stop()
			return nil, err
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		srv := &http.Server{Handler: mux}
		go srv.Serve(ln)
		log.Info("pprof listening", "addr", ln.Addr().String())
		stops = append(stops, func() { srv.Close() })
	}
	return stop, nil
}
