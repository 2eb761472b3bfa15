// Command bigemu serves the Kwollect emulator with one more cluster of N
// synthetic nodes ("big-1" … "big-N", each on its own 1 Hz wattmetre port)
// on one site, for load tests of run mode (bench/runmode.sh). It prints
// "bigemu listening on http://127.0.0.1:PORT" and serves until killed.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/alumet-go/alumet-agent/kwollect/emulator"
)

func main() {
	nodes := flag.Int("nodes", 1000, "synthetic nodes")
	site := flag.String("site", "lyon", "their site")
	lag := flag.Duration("lag", 3*time.Second, "ingestion lag")
	flag.Parse()

	topo := emulator.DefaultTopology()
	s := topo.Site(*site)
	if s == nil {
		log.Fatalf("unknown site %q", *site)
	}
	// The metric catalogue of an existing cluster with a wattmetre.
	var like *emulator.Cluster
	for _, c := range s.Clusters {
		for _, n := range c.Nodes {
			for _, p := range n.PDU {
				if p.Kind == "wattmetre-only" && like == nil {
					like = c
				}
			}
		}
	}
	if like == nil {
		log.Fatalf("no cluster with a wattmetre on %s", *site)
	}
	meter := &emulator.PDU{UID: "wattmetre-big", Vendor: "OmegaWatt", Model: "v2", IP: "172.17.79.250", Ports: map[int]string{}}
	big := &emulator.Cluster{UID: "big", Model: "synthetic", Metrics: like.Metrics, Switch: "sw-big"}
	for i := 1; i <= *nodes; i++ {
		uid := fmt.Sprintf("big-%d", i)
		meter.Ports[i] = uid
		big.Nodes = append(big.Nodes, &emulator.Node{UID: uid, PDU: []emulator.NodePDU{{UID: meter.UID, Port: i, Kind: "wattmetre-only"}}})
	}
	s.PDUs = append(s.PDUs, meter)
	s.Clusters = append(s.Clusters, big)
	e, err := emulator.New(emulator.Config{Topology: topo, Lag: *lag})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("bigemu listening on http://%s\n", ln.Addr())
	log.Fatal(http.Serve(ln, e.Handler()))
}
