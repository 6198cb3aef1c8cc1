//! Scheduling: calendar arithmetic, time zones from TZif data, cron
//! expressions and their next fire times across DST transitions. The
//! scheduler itself (jobs, misfires, executors) is in `ferrotick.scheduler`
//! and waits on the runtime's precise timer (`runtime::timer`).

pub mod civil;
pub mod cron;
pub mod py;
pub mod queue;
pub mod tz;
pub mod walltimer;
