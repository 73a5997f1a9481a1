//! Reads the [`LiveDoc`] PID 1 ward serves from its JSON text, by hand over a
//! parsed `serde_json::Value`. Owns only that reading; builds, serves and
//! renders nothing.
//!
//! Why by hand: `#[derive(Deserialize)]` on the fourteen structs of the document
//! compiled to about 30 KiB of visitors and field matchers, while the
//! `Value` parser is linked anyway (ECS metadata). The rules are serde's
//! defaults, kept on purpose so the wire stays compatible both ways:
//! unknown fields are ignored (a newer ward may add some), an `Option` field
//! may be missing or `null`, any other missing field is an error, integers
//! must be integers in range, and `f64` takes any number. One difference: a
//! repeated key keeps its last value (serde refused it); ward never sends one.

use serde_json::{Map, Value};

use super::doc::{
    ContainerDoc, CpuDoc, LimitDoc, LimitsDoc, LiveDoc, MemoryDoc, OomKillDoc, PeaksDoc, PidsDoc,
    PressureDoc, StderrDoc, StopDoc, WardDoc, WarningDoc, WhenDoc,
};
use crate::watch::throttle::ThrottleRatio;

impl LiveDoc {
    /// The document from its JSON text; the error names the field, with
    /// its path (`ward.pid`, `warnings[2].msg`), and what was found there.
    pub fn from_json(text: &str) -> Result<LiveDoc, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        FromValue::from_value(&v).map_err(|e| e.to_string())
    }
}

/// A type read from one JSON value.
trait FromValue: Sized {
    fn from_value(v: &Value) -> Result<Self, Bad>;
}

/// Why a value was refused, and where. The path is built from the leaf up
/// as the error travels out, so reading a good document allocates no paths.
/// Boxed so that every `Result` stays two words.
struct Bad(Box<BadAt>);

struct BadAt {
    /// `ward.pid`, `warnings[2].msg`; empty for the document itself.
    path: String,
    /// The field is missing (else `what` says what is wrong with it).
    missing: bool,
    what: String,
}

impl Bad {
    #[cold]
    #[inline(never)]
    fn wrong(v: &Value, want: &str) -> Bad {
        // What was found, in serde's words.
        let found = match v {
            Value::Null => "null".into(),
            Value::Bool(b) => format!("boolean `{b}`"),
            Value::Number(n) if n.is_f64() => format!("floating point `{n}`"),
            Value::Number(n) => format!("integer `{n}`"),
            Value::String(s) => format!("string {s:?}"),
            Value::Array(_) => "an array".into(),
            Value::Object(_) => "an object".into(),
        };
        Bad(Box::new(BadAt {
            path: String::new(),
            missing: false,
            what: format!("expected {want}, found {found}"),
        }))
    }

    #[cold]
    #[inline(never)]
    fn missing() -> Bad {
        Bad(Box::new(BadAt {
            path: String::new(),
            missing: true,
            what: String::new(),
        }))
    }

    /// The same error one level up, at `[index]` of an array.
    #[cold]
    #[inline(never)]
    fn at_index(self, index: usize) -> Bad {
        self.under(&format!("[{index}]"))
    }

    /// The same error one level up: under `key`, or at `[index]`.
    #[cold]
    #[inline(never)]
    fn under(mut self, key: &str) -> Bad {
        let sep = if self.0.path.is_empty() || self.0.path.starts_with('[') {
            ""
        } else {
            "."
        };
        self.0.path = format!("{key}{sep}{}", self.0.path);
        self
    }
}

impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = &self.0;
        match (b.missing, b.path.is_empty()) {
            (true, _) => write!(f, "missing field `{}`", b.path),
            (false, true) => f.write_str(&b.what),
            (false, false) => write!(f, "field `{}`: {}", b.path, b.what),
        }
    }
}

/// An object's fields.
struct Fields<'a>(&'a Map<String, Value>);

impl<'a> Fields<'a> {
    fn of(v: &'a Value) -> Result<Fields<'a>, Bad> {
        match v {
            Value::Object(map) => Ok(Fields(map)),
            _ => Err(Bad::wrong(v, "an object")),
        }
    }

    /// A field that must be there (`null` is there, and then wrong).
    fn req<T: FromValue>(&self, key: &str) -> Result<T, Bad> {
        match self.0.get(key) {
            Some(v) => T::from_value(v),
            None => Err(Bad::missing()),
        }
        .map_err(|e| e.under(key))
    }

    /// An `Option` field: missing and `null` are both `None`.
    fn opt<T: FromValue>(&self, key: &str) -> Result<Option<T>, Bad> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => T::from_value(v).map(Some).map_err(|e| e.under(key)),
        }
    }
}

impl FromValue for u64 {
    fn from_value(v: &Value) -> Result<Self, Bad> {
        v.as_u64().ok_or_else(|| Bad::wrong(v, "u64"))
    }
}

impl FromValue for u32 {
    fn from_value(v: &Value) -> Result<Self, Bad> {
        v.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| Bad::wrong(v, "u32"))
    }
}

impl FromValue for i32 {
    fn from_value(v: &Value) -> Result<Self, Bad> {
        v.as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| Bad::wrong(v, "i32"))
    }
}

impl FromValue for f64 {
    fn from_value(v: &Value) -> Result<Self, Bad> {
        v.as_f64().ok_or_else(|| Bad::wrong(v, "a number"))
    }
}

impl FromValue for bool {
    fn from_value(v: &Value) -> Result<Self, Bad> {
        v.as_bool().ok_or_else(|| Bad::wrong(v, "a boolean"))
    }
}

impl FromValue for String {
    fn from_value(v: &Value) -> Result<Self, Bad> {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| Bad::wrong(v, "a string"))
    }
}

impl<T: FromValue> FromValue for Vec<T> {
    fn from_value(v: &Value) -> Result<Self, Bad> {
        let Value::Array(items) = v else {
            return Err(Bad::wrong(v, "an array"));
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            out.push(T::from_value(item).map_err(|e| e.at_index(i))?);
        }
        Ok(out)
    }
}

impl FromValue for LiveDoc {
    fn from_value(v: &Value) -> Result<Self, Bad> {
        let f = Fields::of(v)?;
        Ok(LiveDoc {
            schema: f.req("schema")?,
            ward: f.req("ward")?,
            container: f.opt("container")?,
            active_warnings: f.req("active_warnings")?,
            warnings: f.req("warnings")?,
            warnings_total: f.req("warnings_total")?,
            stop_warnings: f.opt("stop_warnings")?.unwrap_or(0),
            oom_kills: f.req("oom_kills")?,
            oom_kills_total: f.req("oom_kills_total")?,
            stop: f.opt("stop")?,
            main_ended: f.opt("main_ended")?,
            next: f.opt("next")?,
            peaks: f.req("peaks")?,
        })
    }
}

impl FromValue for WardDoc {
    fn from_value(v: &Value) -> Result<Self, Bad> {
        let f = Fields::of(v)?;
        Ok(WardDoc {
            version: f.req("version")?,
            pid: f.req("pid")?,
            pid1: f.req("pid1")?,
            main_pid: f.opt("main_pid")?,
            uptime_s: f.req("uptime_s")?,
            sample_age_s: f.opt("sample_age_s")?,
            samples: f.req("samples")?,
            signals_forwarded: f.req("signals_forwarded")?,
            orphans_reaped: f.req("orphans_reaped")?,
            code_locked: f.opt("code_locked")?,
            stderr_waiting: f.opt("stderr_waiting")?,
        })
    }
}

impl FromValue for StderrDoc {
    fn from_value(v: &Value) -> Result<Self, Bad> {
        let f = Fields::of(v)?;
        Ok(StderrDoc {
            bytes: f.req("bytes")?,
            waiting_s: f.req("waiting_s")?,
            dropped_lines: f.req("dropped_lines")?,
            failed: f.opt("failed")?.unwrap_or(false),
            file: f.opt("file")?.unwrap_or(false),
            full_now: f.opt("full_now")?.unwrap_or(false),
        })
    }
}

impl FromValue for ContainerDoc {
    fn from_value(v: &Value) -> Result<Self, Bad> {
        let f = Fields::of(v)?;
        Ok(ContainerDoc {
            cgroup: f.opt("cgroup")?,
            limits: f.req("limits")?,
            memory: f.req("memory")?,
            cpu: f.req("cpu")?,
            pids: f.req("pids")?,
            pressure: f.opt("pressure")?,
        })
    }
}

impl FromValue for LimitsDoc {
    fn from_value(v: &Value) -> Result<Self, Bad> {
        let f = Fields::of(v)?;
        Ok(LimitsDoc {
            memory_bytes: f.opt("memory_bytes")?,
            memory_high_bytes: f.opt("memory_high_bytes")?,
            cpu_cores: f.opt("cpu_cores")?,
            pids: f.opt("pids")?,
        })
    }
}

impl FromValue for LimitDoc {
    fn from_value(v: &Value) -> Result<Self, Bad> {
        let f = Fields::of(v)?;
        Ok(LimitDoc {
            value: f.req("value")?,
            source: f.req("source")?,
        })
    }
}

impl FromValue for MemoryDoc {
    fn from_value(v: &Value) -> Result<Self, Bad> {
        let f = Fields::of(v)?;
        Ok(MemoryDoc {
            usage_bytes: f.opt("usage_bytes")?,
            working_set_bytes: f.opt("working_set_bytes")?,
            anon_bytes: f.opt("anon_bytes")?,
            file_bytes: f.opt("file_bytes")?,
            shmem_bytes: f.opt("shmem_bytes")?,
            inactive_file_bytes: f.opt("inactive_file_bytes")?,
            peak_bytes: f.opt("peak_bytes")?,
            ratio: f.opt("ratio")?,
        })
    }
}

impl FromValue for CpuDoc {
    fn from_value(v: &Value) -> Result<Self, Bad> {
        let f = Fields::of(v)?;
        Ok(CpuDoc {
            throttled_30s: f.opt("throttled_30s")?,
            throttled_1m: f.opt("throttled_1m")?,
            throttled_5m: f.opt("throttled_5m")?,
            throttled_since_start: f.opt("throttled_since_start")?,
            periods: f.opt("periods")?,
            usage_s: f.opt("usage_s")?,
        })
    }
}

impl FromValue for ThrottleRatio {
    fn from_value(v: &Value) -> Result<Self, Bad> {
        let f = Fields::of(v)?;
        Ok(ThrottleRatio {
            ratio: f.req("ratio")?,
            periods: f.req("periods")?,
            usage_cores: f.req("usage_cores")?,
            span_s: f.req("span_s")?,
        })
    }
}

impl FromValue for PidsDoc {
    fn from_value(v: &Value) -> Result<Self, Bad> {
        let f = Fields::of(v)?;
        Ok(PidsDoc {
            current: f.opt("current")?,
            ratio: f.opt("ratio")?,
            fork_failures: f.opt("fork_failures")?,
        })
    }
}

impl FromValue for PressureDoc {
    fn from_value(v: &Value) -> Result<Self, Bad> {
        let f = Fields::of(v)?;
        Ok(PressureDoc {
            cpu_some_avg10: f.opt("cpu_some_avg10")?,
            memory_some_avg10: f.opt("memory_some_avg10")?,
            memory_full_avg10: f.opt("memory_full_avg10")?,
            io_some_avg10: f.opt("io_some_avg10")?,
        })
    }
}

impl FromValue for WarningDoc {
    fn from_value(v: &Value) -> Result<Self, Bad> {
        let f = Fields::of(v)?;
        Ok(WarningDoc {
            key: f.req("key")?,
            at_s: f.req("at_s")?,
            msg: f.req("msg")?,
        })
    }
}

impl FromValue for OomKillDoc {
    fn from_value(v: &Value) -> Result<Self, Bad> {
        let f = Fields::of(v)?;
        Ok(OomKillDoc {
            at_s: f.req("at_s")?,
            victim_pid: f.opt("victim_pid")?,
            victim_name: f.opt("victim_name")?,
            certain: f.req("certain")?,
            limit_bytes: f.opt("limit_bytes")?,
        })
    }
}

impl FromValue for StopDoc {
    fn from_value(v: &Value) -> Result<Self, Bad> {
        let f = Fields::of(v)?;
        Ok(StopDoc {
            signal: f.req("signal")?,
            at_s: f.req("at_s")?,
        })
    }
}

impl FromValue for WhenDoc {
    fn from_value(v: &Value) -> Result<Self, Bad> {
        let f = Fields::of(v)?;
        Ok(WhenDoc {
            what: f.req("what")?,
            at_s: f.req("at_s")?,
        })
    }
}

impl FromValue for PeaksDoc {
    fn from_value(v: &Value) -> Result<Self, Bad> {
        let f = Fields::of(v)?;
        Ok(PeaksDoc {
            memory_bytes: f.opt("memory_bytes")?,
            pids: f.opt("pids")?,
            unreaped_zombies: f.req("unreaped_zombies")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest document ward could send: every `Option` missing.
    const MINIMAL: &str = r#"{"schema":1,
        "ward":{"version":"0.1.0","pid":1,"pid1":true,"uptime_s":2,
                "samples":0,"signals_forwarded":0,"orphans_reaped":0},
        "active_warnings":[],"warnings":[],"warnings_total":0,
        "oom_kills":[],"oom_kills_total":0,"peaks":{"unreaped_zombies":0}}"#;

    fn with(field: &str, json: &str) -> String {
        let mut v: Value = serde_json::from_str(MINIMAL).unwrap();
        let mut at = &mut v;
        let mut parts: Vec<&str> = field.split('.').collect();
        let last = parts.pop().unwrap();
        for p in parts {
            at = &mut at[p];
        }
        at[last] = serde_json::from_str(json).unwrap();
        v.to_string()
    }

    fn without(field: &str) -> String {
        let mut v: Value = serde_json::from_str(MINIMAL).unwrap();
        let (obj, key) = match field.split_once('.') {
            Some((o, k)) => (&mut v[o], k),
            None => (&mut v, field),
        };
        obj.as_object_mut().unwrap().remove(key);
        v.to_string()
    }

    #[test]
    fn minimal_document_reads_with_options_none() {
        let d = LiveDoc::from_json(MINIMAL).unwrap();
        assert_eq!(d.schema, 1);
        assert_eq!(d.ward.uptime_s, 2.0, "an integer is a good f64");
        assert_eq!(d.ward.main_pid, None);
        assert_eq!(d.container, None);
        assert_eq!(d.stop, None);
        assert_eq!(d.peaks.pids, None);
        assert_eq!(d.ward.code_locked, None, "an older ward sends none");
    }

    #[test]
    fn every_field_set_round_trips() {
        let t = |r: f64| ThrottleRatio {
            ratio: r,
            periods: 300,
            usage_cores: 0.5,
            span_s: 30.0,
        };
        let limit = |v: f64| LimitDoc {
            value: v,
            source: "own cgroup".into(),
        };
        let doc = LiveDoc {
            schema: 1,
            ward: WardDoc {
                version: "0.1.0".into(),
                pid: 1,
                pid1: true,
                main_pid: Some(7),
                uptime_s: 12.25,
                sample_age_s: Some(0.5),
                samples: 9,
                signals_forwarded: 2,
                orphans_reaped: 3,
                code_locked: Some(false),
                stderr_waiting: Some(StderrDoc {
                    bytes: 4096,
                    waiting_s: 2.5,
                    dropped_lines: 7,
                    failed: false,
                    file: true,
                    full_now: false,
                }),
            },
            container: Some(ContainerDoc {
                cgroup: Some("v2".into()),
                limits: LimitsDoc {
                    memory_bytes: Some(limit(536870912.0)),
                    memory_high_bytes: Some(limit(268435456.0)),
                    cpu_cores: Some(limit(0.1)),
                    pids: Some(limit(100.0)),
                },
                memory: MemoryDoc {
                    usage_bytes: Some(u64::MAX),
                    working_set_bytes: Some(2),
                    anon_bytes: Some(3),
                    file_bytes: Some(4),
                    shmem_bytes: Some(5),
                    inactive_file_bytes: Some(6),
                    peak_bytes: Some(7),
                    ratio: Some(1.0 / 3.0),
                },
                cpu: CpuDoc {
                    throttled_30s: Some(t(0.25)),
                    throttled_1m: Some(t(0.5)),
                    throttled_5m: Some(t(0.75)),
                    throttled_since_start: Some(0.1),
                    periods: Some(1000),
                    usage_s: Some(2.5),
                },
                pids: PidsDoc {
                    current: Some(25),
                    ratio: Some(0.25),
                    fork_failures: Some(1),
                },
                pressure: Some(PressureDoc {
                    cpu_some_avg10: Some(1.5),
                    memory_some_avg10: Some(2.5),
                    memory_full_avg10: Some(0.0),
                    io_some_avg10: Some(3.5),
                }),
            }),
            active_warnings: vec!["memory_high".into()],
            warnings: vec![WarningDoc {
                key: "memory_high".into(),
                at_s: 5.0,
                msg: "working set \"90 %\" of the limit".into(),
            }],
            warnings_total: 4,
            stop_warnings: 2,
            oom_kills: vec![OomKillDoc {
                at_s: 7.5,
                victim_pid: Some(-1),
                victim_name: Some("java".into()),
                certain: false,
                limit_bytes: Some(1 << 29),
            }],
            oom_kills_total: 1,
            stop: Some(StopDoc {
                signal: "SIGTERM".into(),
                at_s: 9.0,
            }),
            main_ended: Some(WhenDoc {
                what: "exited with code 3".into(),
                at_s: 9.5,
            }),
            next: Some(WhenDoc {
                what: "SIGKILL to what is left (--grace)".into(),
                at_s: 12.5,
            }),
            peaks: PeaksDoc {
                memory_bytes: Some(8),
                pids: Some(30),
                unreaped_zombies: u32::MAX,
            },
        };
        let text = crate::status::doc::to_json(&doc);
        assert_eq!(LiveDoc::from_json(&text).unwrap(), doc);
    }

    #[test]
    fn null_is_none_and_unknown_fields_are_ignored() {
        let d = LiveDoc::from_json(&with("ward.main_pid", "null")).unwrap();
        assert_eq!(d.ward.main_pid, None);
        let d = LiveDoc::from_json(&with("ward.from_a_newer_ward", "[1, {}]")).unwrap();
        assert_eq!(d, LiveDoc::from_json(MINIMAL).unwrap());
    }

    #[test]
    fn missing_required_fields_are_named_with_their_path() {
        assert_eq!(
            LiveDoc::from_json(&without("ward.pid")).unwrap_err(),
            "missing field `ward.pid`"
        );
        assert_eq!(
            LiveDoc::from_json(&without("peaks")).unwrap_err(),
            "missing field `peaks`"
        );
        let e = LiveDoc::from_json(&with("warnings", r#"[{"key":"k","at_s":1}]"#)).unwrap_err();
        assert_eq!(e, "missing field `warnings[0].msg`");
    }

    #[test]
    fn wrong_types_and_ranges_are_refused() {
        let err = |field: &str, json: &str| LiveDoc::from_json(&with(field, json)).unwrap_err();
        assert_eq!(
            err("ward.pid", "\"1\""),
            "field `ward.pid`: expected i32, found string \"1\""
        );
        assert_eq!(
            err("ward.pid", "4294967296"),
            "field `ward.pid`: expected i32, found integer `4294967296`"
        );
        assert_eq!(
            err("schema", "-1"),
            "field `schema`: expected u32, found integer `-1`"
        );
        assert_eq!(
            err("warnings_total", "1.5"),
            "field `warnings_total`: expected u64, found floating point `1.5`"
        );
        assert_eq!(
            err("ward.pid1", "null"),
            "field `ward.pid1`: expected a boolean, found null"
        );
        assert_eq!(
            err("container", "[]"),
            "field `container`: expected an object, found an array"
        );
        assert_eq!(
            err("active_warnings", "{}"),
            "field `active_warnings`: expected an array, found an object"
        );
        assert_eq!(
            LiveDoc::from_json("[]").unwrap_err(),
            "expected an object, found an array"
        );
        assert!(LiveDoc::from_json("{").unwrap_err().contains("EOF"));
    }
}
