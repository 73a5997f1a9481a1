//! Metrics for dashboards and alerts: a plain [`MetricsView`] of the numbers,
//! rendered as Prometheus text ([`prom`]) or CloudWatch EMF ([`emf`]), and a
//! one-thread HTTP server ([`http`]) that serves them.
//!
//! This module only formats and serves values it is handed: it never reads
//! /proc or /sys itself, and never runs on the reaping thread. Filling the view
//! (from the watch's snapshot and the run's facts) is the caller's job.

pub mod ecs;
pub mod emf;
pub mod http;
pub mod prom;
pub mod view;

pub use view::{LimitOrigin, MetricsView, WarningName};
