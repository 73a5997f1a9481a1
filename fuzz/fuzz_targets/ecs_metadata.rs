//! The ECS task metadata endpoint (`ECS_CONTAINER_METADATA_URI_V4`, for
//! `--emf`): the variable's URL through `metrics::ecs::split_url`, the whole
//! HTTP response through `parse_response` (Content-Length and chunked
//! bodies), and its body through the container and task document parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ward::metrics::ecs::{
    container_docker_id, parse_container_metadata, parse_response, parse_task_metadata, split_url,
};

fuzz_target!(|data: &[u8]| {
    if let Ok((status, body)) = parse_response(data) {
        assert!(body.len() <= data.len(), "a body longer than the response");
        let _ = status;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok((host, _addr, path)) = split_url(text) {
        assert!(
            text.contains(host) && !host.is_empty(),
            "host not text of the URL"
        );
        assert!(path.starts_with('/'), "path {path:?}");
    }
    let _ = parse_container_metadata(text);
    let id = container_docker_id(text);
    let _ = parse_task_metadata(text, id.as_deref());
    let _ = parse_task_metadata(text, Some("0123456789ab"));
});
