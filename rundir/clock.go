package rundir

// ClockState is the host clock's synchronisation when the run ended, as
// the kernel reports it (adjtimex): whether NTP (chrony, ntpd,
// systemd-timesyncd) keeps it synchronised, its estimated offset and error
// bounds. The on-node timestamps (RAPL, the exec window) are only as good
// as this clock; Kwollect's come from the meters' own clocks.
type ClockState struct {
	Synchronized bool    `json:"synchronized"`
	OffsetS      float64 `json:"offset_s"`
	MaxErrorS    float64 `json:"max_error_s"`
	EstErrorS    float64 `json:"est_error_s"`
	Source       string  `json:"source"`
}
