// Package logkey names the keys of voicegate's structured logs, so that every
// component logs the same thing under the same key and operators can query
// them. Values logged under these keys never hold bodies, secrets,
// signatures or personal data (a test asserts it).
package logkey

const (
	Err            = "err"
	CallID         = "call_id"
	Tool           = "tool"
	ToolCallID     = "tool_call_id"
	Type           = "type"
	Status         = "status"
	Reason         = "reason"
	Outcome        = "outcome"
	DurationMS     = "duration_ms"
	DeadlineMS     = "deadline_ms"
	TimeoutMS      = "timeout_ms"
	DelayMS        = "delay_ms"
	Addr           = "addr"
	URL            = "url"
	Path           = "path"
	Dir            = "dir"
	Driver         = "driver"
	Source         = "source"
	Count          = "count"
	Calls          = "calls"
	Setting        = "setting"
	Settings       = "settings"
	Warning        = "warning"
	Tools          = "tools"
	Panic          = "panic"
	Component      = "component"
	Credentials    = "credentials"
	Version        = "version"
	IntegrityCheck = "integrity_check"
	Took           = "took"
	IntervalS      = "interval_s"
	ErrClass       = "err_class"
	DryRun         = "dry_run"
	Assistant      = "assistant"
	Base           = "base"
	Generation     = "generation"
	Rule           = "rule"
	CallType       = "call_type"
	PhoneNumberID  = "phone_number_id"
	EndedReason    = "ended_reason"
	DurationS      = "duration_s"
	ToolCalls      = "tool_calls"
	Interruptions  = "interruptions"
	ToolsInFlight  = "tools_in_flight"
	Action         = "action"
	Field          = "field"
	Request        = "request"
	Client         = "client"
	Peer           = "peer"
	// Replica names the process among the replicas (config replica): the
	// root logger carries it on every line.
	Replica = "replica"
)

// Keys of internal/health's lines.
const (
	Dependency = "dependency"
	Shared     = "shared"
)
