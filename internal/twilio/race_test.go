//go:build race

package twilio

func init() { raceEnabled = true }
