package vapi

import (
	"encoding/json"
	"time"
)

// ToolResult is one entry of a tool-calls response. Exactly one of Result and
// Error is set; both are single-line strings.
type ToolResult struct {
	ToolCallID string `json:"toolCallId"`
	Name       string `json:"name"`
	Result     string `json:"result,omitempty"`
	Error      string `json:"error,omitempty"`
	// Message is what Vapi says with the result (a tool message object or
	// a list of them) and Metadata what it keeps with it, when the tool's
	// internal API answers in Vapi's shape (tools' response: vapi).
	Message  json.RawMessage `json:"message,omitempty"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
	// Outcome is how the call went, for logs and metrics ("ok",
	// "http_error", ...); never sent to Vapi.
	Outcome string `json:"-"`
	// Status is the internal API's HTTP status when it answered (0 when
	// it did not); never sent to Vapi.
	Status int `json:"-"`
	// Duration is how long the call took (never sent to Vapi).
	Duration time.Duration `json:"-"`
}

// ToolCallsResponse answers tool-calls: always HTTP 200, results in call order.
type ToolCallsResponse struct {
	Results []ToolResult `json:"results"`
}

// FunctionCallResponse answers the legacy function-call message.
type FunctionCallResponse struct {
	Result string `json:"result"`
}

// AssistantResponse answers assistant-request.
type AssistantResponse struct {
	AssistantID        string          `json:"assistantId,omitempty"`
	Assistant          json.RawMessage `json:"assistant,omitempty"`
	SquadID            string          `json:"squadId,omitempty"`
	Squad              json.RawMessage `json:"squad,omitempty"`
	SquadOverrides     json.RawMessage `json:"squadOverrides,omitempty"`
	WorkflowID         string          `json:"workflowId,omitempty"`
	Workflow           json.RawMessage `json:"workflow,omitempty"`
	WorkflowOverrides  json.RawMessage `json:"workflowOverrides,omitempty"`
	Destination        json.RawMessage `json:"destination,omitempty"`
	AssistantOverrides json.RawMessage `json:"assistantOverrides,omitempty"`
	Error              string          `json:"error,omitempty"`
}

// TransferResponse answers transfer-destination-request.
type TransferResponse struct {
	Destination json.RawMessage  `json:"destination,omitempty"`
	Message     *TransferMessage `json:"message,omitempty"`
	Error       string           `json:"error,omitempty"`
}

// TransferMessage is spoken before a transfer. Vapi's docs name the text
// "message", the OpenAPI spec "content"; both are sent.
type TransferMessage struct {
	Type    string `json:"type"`
	Message string `json:"message"`
	Content string `json:"content"`
}

// EndpointingResponse answers call.endpointing.request: how long Vapi waits
// for the caller before the assistant speaks (0–15 s).
type EndpointingResponse struct {
	TimeoutSeconds float64 `json:"timeoutSeconds"`
}

// HandoffResponse answers handoff-destination-request: a destination, or
// an error the assistant speaks.
type HandoffResponse struct {
	Destination json.RawMessage `json:"destination,omitempty"`
	Error       string          `json:"error,omitempty"`
}

// PredialResponse answers campaign.predial: anything else is a pre-dial
// failure and the call is not placed.
type PredialResponse struct {
	Eligible bool `json:"eligible"`
}
