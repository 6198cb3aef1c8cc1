//! Durable outputs: the line-protocol encoder of the InfluxDB writer.

pub mod line;
pub mod py;
