package daemon

import "context"

func (d *daemon) startSystemd(ctx context.Context) {}
func (d *daemon) notifyStopping()                  {}
func (d *daemon) notifyReloading()                 {}
func (d *daemon) notifyReady()                     {}
