//! `probenet up`: the whole network on one machine (scheduler, one prober per region, the demo service).

pub mod demo;
