package emulator

import (
	"fmt"
	"strconv"
)

// Topology is the emulated part of the Grid'5000 reference repository: sites,
// clusters with their metric catalogues, nodes and the wattmetres/PDUs that
// feed them. The same data drives the reference API documents served by the
// emulator and the synthetic metric generators.
type Topology struct {
	Sites []*Site
}

// Site is one Grid'5000 site, i.e. one Kwollect server.
type Site struct {
	UID      string
	Clusters []*Cluster
	PDUs     []*PDU
}

// Cluster is a homogeneous set of nodes sharing one metric catalogue.
type Cluster struct {
	UID   string
	Model string
	// Metrics is the catalogue served as the cluster document's .metrics, in
	// the same JSON shape as the reference API.
	Metrics []MetricDesc
	Nodes   []*Node
	// Switch is the uid of the switch the nodes' eth0 is plugged into; the
	// network metrics are stored under "<Switch>-port-<SwitchPort>".
	Switch string
}

// Node is one machine.
type Node struct {
	UID string
	// PDU lists the wattmetre ports and PDU outlets feeding the node, as in
	// the reference API node document.
	PDU []NodePDU
	// SwitchPort is the port number on the cluster's switch (0 = none).
	SwitchPort int
	// GPUs is the number of GPUs (used by the DCGM exporter metrics).
	GPUs int
	// Sockets is the number of CPU sockets, i.e. of RAPL package and DRAM
	// zones; 0 = 2.
	Sockets int
}

// NodePDU is one entry of a node's "pdu" list.
type NodePDU struct {
	UID  string `json:"uid"`
	Port int    `json:"port"`
	Kind string `json:"kind,omitempty"` // "wattmetre-only" for wattmetres
}

// PDU is a wattmetre (Vendor "OmegaWatt", Model "v2"/"v3") or a PDU.
type PDU struct {
	UID    string
	Vendor string
	Model  string
	IP     string
	// Ports maps a port number to the node uid it feeds.
	Ports map[int]string
}

// IsWattmetre tells whether the device is an OmegaWatt wattmetre.
func (p *PDU) IsWattmetre() bool { return p.Vendor == "OmegaWatt" }

// PortDevice returns the Kwollect device id of a port: "<uid>-port<N>" for
// wattmetres, "<uid>-port-<N>" for PDUs.
func (p *PDU) PortDevice(port int) string {
	if p.IsWattmetre() {
		return p.UID + "-port" + strconv.Itoa(port)
	}
	return p.UID + "-port-" + strconv.Itoa(port)
}

// RawPeriodMs is the period of the raw frames of a wattmetre: 20 ms for v2,
// 10 ms for v3.
func (p *PDU) RawPeriodMs() int {
	if p.Model == "v3" {
		return 10
	}
	return 20
}

// MetricDesc is one entry of a cluster's metric catalogue. Field order and
// names follow the reference API (keys sorted alphabetically).
type MetricDesc struct {
	Description    string            `json:"description"`
	Labels         map[string]string `json:"labels,omitempty"`
	Name           string            `json:"name"`
	OnlyFor        []string          `json:"only_for,omitempty"`
	OptionalPeriod int               `json:"optional_period,omitempty"`
	Period         int               `json:"period"`
	ScaleFactor    float64           `json:"scale_factor,omitempty"`
	Source         MetricSource      `json:"source"`
}

// MetricSource tells how Kwollect collects a metric.
type MetricSource struct {
	ID       any    `json:"id,omitempty"` // string, or []string for Prometheus groups
	Port     int    `json:"port,omitempty"`
	Protocol string `json:"protocol"`
}

// Site returns the site with that uid, or nil.
func (t *Topology) Site(uid string) *Site {
	for _, s := range t.Sites {
		if s.UID == uid {
			return s
		}
	}
	return nil
}

// Cluster returns the cluster with that uid, or nil.
func (s *Site) Cluster(uid string) *Cluster {
	for _, c := range s.Clusters {
		if c.UID == uid {
			return c
		}
	}
	return nil
}

// PDU returns the PDU or wattmetre with that uid, or nil.
func (s *Site) PDU(uid string) *PDU {
	for _, p := range s.PDUs {
		if p.UID == uid {
			return p
		}
	}
	return nil
}

// Node returns the node with that uid, or nil.
func (c *Cluster) Node(uid string) *Node {
	for _, n := range c.Nodes {
		if n.UID == uid {
			return n
		}
	}
	return nil
}

// SiteUIDs lists the 12 Grid'5000 sites.
var SiteUIDs = []string{"bordeaux", "grenoble", "lille", "louvain", "luxembourg", "lyon",
	"nancy", "nantes", "rennes", "sophia", "strasbourg", "toulouse"}

// DefaultTopology returns the built-in topology: the 12 sites and a realistic
// subset of clusters (see README.md). Each call returns a fresh copy.
func DefaultTopology() *Topology {
	t := &Topology{}
	sites := map[string]*Site{}
	for _, uid := range SiteUIDs {
		s := &Site{UID: uid}
		sites[uid] = s
		t.Sites = append(t.Sites, s)
	}
	taurusCat, grosCat := referenceCatalogues()

	// --- lyon ---------------------------------------------------------
	lyon := sites["lyon"]
	wm1 := &PDU{UID: "wattmetre1", Vendor: "OmegaWatt", Model: "v2", IP: "172.17.79.240", Ports: map[int]string{}}
	wm3 := &PDU{UID: "wattmetrev3-1", Vendor: "OmegaWatt", Model: "v3", IP: "172.17.79.241", Ports: map[int]string{}}
	lyon.PDUs = append(lyon.PDUs, wm1, wm3)
	// taurus-N is on wattmetre1 port N-1 (taurus-7 -> wattmetre1-port6, as
	// in real Kwollect output).
	taurus := &Cluster{UID: "taurus", Model: "Dell PowerEdge R720", Metrics: taurusCat, Switch: "sw-taurus"}
	for i := 1; i <= 16; i++ {
		taurus.Nodes = append(taurus.Nodes, wattNode(fmt.Sprintf("taurus-%d", i), wm1, i-1))
		taurus.Nodes[i-1].SwitchPort = i
	}
	orion := &Cluster{UID: "orion", Model: "Dell PowerEdge R720", Metrics: stdCatalogue(wattV2, bmcSNMP(5000)), Switch: "sw-orion"}
	for i := 1; i <= 4; i++ {
		orion.Nodes = append(orion.Nodes, wattNode(fmt.Sprintf("orion-%d", i), wm1, 37+i)) // orion-3 -> port 40
	}
	gemini := &Cluster{UID: "gemini", Model: "Nvidia DGX-1", Metrics: append(stdCatalogue(wattV3, bmcSNMP(5000)), dcgmGroup()), Switch: "sw-gemini"}
	for i := 1; i <= 2; i++ {
		n := &Node{UID: fmt.Sprintf("gemini-%d", i), GPUs: 8}
		for _, port := range []int{28 + 2*i, 29 + 2*i} { // gemini-1: 30,31; gemini-2: 32,33
			n.PDU = append(n.PDU, NodePDU{UID: wm3.UID, Port: port, Kind: "wattmetre-only"})
			wm3.Ports[port] = n.UID
		}
		gemini.Nodes = append(gemini.Nodes, n)
	}
	nova := &Cluster{UID: "nova", Model: "Dell PowerEdge R430", Metrics: stdCatalogue(wattV2, bmcSNMP(5000)), Switch: "sw-nova"}
	for i := 1; i <= 8; i++ {
		nova.Nodes = append(nova.Nodes, wattNode(fmt.Sprintf("nova-%d", i), wm1, 41+i))
	}
	lyon.Clusters = append(lyon.Clusters, gemini, nova, orion, taurus)

	// --- nancy --------------------------------------------------------
	nancy := sites["nancy"]
	gwm := &PDU{UID: "gros-wattmetre2", Vendor: "OmegaWatt", Model: "v2", IP: "172.17.63.240", Ports: map[int]string{}}
	nancy.PDUs = append(nancy.PDUs, gwm)
	gros := &Cluster{UID: "gros", Model: "Dell PowerEdge R640", Metrics: grosCat, Switch: "sw-gros"}
	var pdus []*PDU
	for k := 1; k <= 4; k++ {
		p := &PDU{UID: fmt.Sprintf("gros-pdu%d", k), Vendor: "Eaton", Model: "EMAB03", IP: fmt.Sprintf("172.17.63.%d", 200+k), Ports: map[int]string{}}
		pdus = append(pdus, p)
		nancy.PDUs = append(nancy.PDUs, p)
	}
	for i := 1; i <= 76; i++ {
		// One socket per node (1 × Xeon Gold 5220): one RAPL zone per domain.
		n := &Node{UID: fmt.Sprintf("gros-%d", i), SwitchPort: i, Sockets: 1}
		pdu, port := pdus[(i-1)/20], (i-1)%20+1 // gros-41 -> gros-pdu3 port 1
		n.PDU = append(n.PDU, NodePDU{UID: pdu.UID, Port: port})
		pdu.Ports[port] = n.UID
		if i >= 41 { // gros-41 -> gros-wattmetre2 port 30
			n.PDU = append(n.PDU, NodePDU{UID: gwm.UID, Port: i - 11, Kind: "wattmetre-only"})
			gwm.Ports[i-11] = n.UID
		}
		gros.Nodes = append(gros.Nodes, n)
	}
	nancy.Clusters = append(nancy.Clusters, gros)

	// --- grenoble -----------------------------------------------------
	grenoble := sites["grenoble"]
	gwm1 := &PDU{UID: "wattmetre1", Vendor: "OmegaWatt", Model: "v2", IP: "172.16.31.240", Ports: map[int]string{}}
	grenoble.PDUs = append(grenoble.PDUs, gwm1)
	yeti := &Cluster{UID: "yeti", Model: "Dell PowerEdge R940", Metrics: stdCatalogue(wattV2, bmcSNMP(5000)), Switch: "sw-yeti"}
	for i := 1; i <= 4; i++ {
		n := wattNode(fmt.Sprintf("yeti-%d", i), gwm1, i)
		n.Sockets = 4 // 4 × Xeon Gold 6130
		yeti.Nodes = append(yeti.Nodes, n)
	}
	dahu := &Cluster{UID: "dahu", Model: "Dell PowerEdge C6420", Metrics: stdCatalogue(bmcSNMP(5000)), Switch: "sw-dahu"}
	for i := 1; i <= 4; i++ {
		dahu.Nodes = append(dahu.Nodes, &Node{UID: fmt.Sprintf("dahu-%d", i)})
	}
	grenoble.Clusters = append(grenoble.Clusters, dahu, yeti)

	// --- rennes -------------------------------------------------------
	rennes := sites["rennes"]
	rwm := &PDU{UID: "wattmetrev3-1", Vendor: "OmegaWatt", Model: "v3", IP: "172.16.111.240", Ports: map[int]string{}}
	rennes.PDUs = append(rennes.PDUs, rwm)
	paradoxe := &Cluster{UID: "paradoxe", Model: "HPE ProLiant DL360 Gen10+", Metrics: stdCatalogue(wattV3, bmcSNMP(0)), Switch: "sw-paradoxe"}
	for i := 1; i <= 4; i++ {
		paradoxe.Nodes = append(paradoxe.Nodes, wattNode(fmt.Sprintf("paradoxe-%d", i), rwm, i))
	}
	rennes.Clusters = append(rennes.Clusters, paradoxe)

	// --- lille --------------------------------------------------------
	lille := sites["lille"]
	lwm := &PDU{UID: "wattmetrev3-1", Vendor: "OmegaWatt", Model: "v3", IP: "172.16.47.240", Ports: map[int]string{}}
	lille.PDUs = append(lille.PDUs, lwm)
	chirop := &Cluster{UID: "chirop", Model: "HPE ProLiant DL360 Gen10+", Metrics: stdCatalogue(wattV3, bmcSNMP(0)), Switch: "sw-chirop"}
	for i := 1; i <= 4; i++ {
		chirop.Nodes = append(chirop.Nodes, wattNode(fmt.Sprintf("chirop-%d", i), lwm, i))
	}
	lille.Clusters = append(lille.Clusters, chirop)

	// --- nantes, toulouse: BMC power only -----------------------------
	ecotype := &Cluster{UID: "ecotype", Model: "Dell PowerEdge R630", Metrics: stdCatalogue(bmcSNMP(5000)), Switch: "sw-ecotype"}
	for i := 1; i <= 4; i++ {
		ecotype.Nodes = append(ecotype.Nodes, &Node{UID: fmt.Sprintf("ecotype-%d", i)})
	}
	sites["nantes"].Clusters = append(sites["nantes"].Clusters, ecotype)
	montcalm := &Cluster{UID: "montcalm", Model: "HPE ProLiant DL360 Gen10+", Metrics: stdCatalogue(bmcRedfish()), Switch: "sw-montcalm"}
	for i := 1; i <= 4; i++ {
		montcalm.Nodes = append(montcalm.Nodes, &Node{UID: fmt.Sprintf("montcalm-%d", i)})
	}
	sites["toulouse"].Clusters = append(sites["toulouse"].Clusters, montcalm)
	return t
}

func wattNode(uid string, wm *PDU, port int) *Node {
	wm.Ports[port] = uid
	return &Node{UID: uid, PDU: []NodePDU{{UID: wm.UID, Port: port, Kind: "wattmetre-only"}}}
}

// topoIndex is the per-site lookup structure built from a Topology.
type siteIndex struct {
	site     *Site
	nodes    map[string]*nodeRef // node uid -> node
	clusters map[string]*Cluster
}

type nodeRef struct {
	node    *Node
	cluster *Cluster
	site    *Site
}

// validate checks the topology and returns the per-site index.
func (t *Topology) index() (map[string]*siteIndex, error) {
	out := map[string]*siteIndex{}
	seenNodes := map[string]string{}
	for _, s := range t.Sites {
		if s.UID == "" {
			return nil, fmt.Errorf("topology: site with empty uid")
		}
		if out[s.UID] != nil {
			return nil, fmt.Errorf("topology: duplicate site %q", s.UID)
		}
		si := &siteIndex{site: s, nodes: map[string]*nodeRef{}, clusters: map[string]*Cluster{}}
		out[s.UID] = si
		pdus := map[string]*PDU{}
		for _, p := range s.PDUs {
			if pdus[p.UID] != nil {
				return nil, fmt.Errorf("topology: duplicate PDU %q at %s", p.UID, s.UID)
			}
			pdus[p.UID] = p
		}
		for _, c := range s.Clusters {
			if si.clusters[c.UID] != nil {
				return nil, fmt.Errorf("topology: duplicate cluster %q at %s", c.UID, s.UID)
			}
			si.clusters[c.UID] = c
			for _, n := range c.Nodes {
				if other, ok := seenNodes[n.UID]; ok {
					return nil, fmt.Errorf("topology: node %q defined at %s and %s", n.UID, other, s.UID)
				}
				seenNodes[n.UID] = s.UID
				si.nodes[n.UID] = &nodeRef{node: n, cluster: c, site: s}
				for _, np := range n.PDU {
					p := pdus[np.UID]
					if p == nil {
						return nil, fmt.Errorf("topology: node %s refers to unknown PDU %q", n.UID, np.UID)
					}
					if p.Ports[np.Port] != n.UID {
						return nil, fmt.Errorf("topology: node %s: port %d of %s maps to %q", n.UID, np.Port, p.UID, p.Ports[np.Port])
					}
				}
			}
		}
		for _, p := range s.PDUs {
			for port, node := range p.Ports {
				if si.nodes[node] == nil {
					return nil, fmt.Errorf("topology: %s port %d maps to unknown node %q", p.UID, port, node)
				}
			}
		}
	}
	return out, nil
}
