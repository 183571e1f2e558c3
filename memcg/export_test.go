package memcg

// Exported for the external tests: setting a hook (nil clears it).
const (
	HookChargeCounted = hookChargeCounted
	HookRemoveOffline = hookRemoveOffline
	HookCreateLocked  = hookCreateLocked
)

func SetHook(h int, f func()) {
	if f == nil {
		hooks[h].Store(nil)
		return
	}
	hooks[h].Store(&f)
}
