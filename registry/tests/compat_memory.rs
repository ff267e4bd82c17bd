//! The heap a compatibility check may use, measured by a counting global allocator (this
//! file is its own test binary so that nothing else allocates meanwhile): issue 15's record
//! chain of 800 records, whose check once needed more memory than the machine had, is
//! checked both ways and registered with a peak under 50 MB above what the test held before.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};
use strand_registry::{MemoryLog, Options, Registry, router};
use tower::ServiceExt;

/// The system allocator, counting the bytes allocated now and at the peak.
struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = CURRENT.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on to the system allocator unchanged.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` was allocated by this allocator with `layout`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                CURRENT.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn record_chain(n: usize, bottom: &str) -> Value {
    let records: Vec<Value> = (0..n)
        .map(|i| {
            let ty = if i == 0 {
                json!(bottom)
            } else {
                json!(format!("r{}", i - 1))
            };
            json!({"type": "record", "name": format!("r{i}"), "fields": [{"name": "f", "type": ty}]})
        })
        .collect();
    Value::Array(records)
}

async fn call(app: &axum::Router, method: &str, uri: &str, body: Value) -> (u16, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/vnd.schemaregistry.v1+json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn record_chain_of_800_is_checked_and_registered_in_under_50_mb_of_heap() {
    let app = router(Arc::new(
        Registry::open(Arc::new(MemoryLog::new()), Options::default()).unwrap(),
    ));
    let int = json!({"schema": record_chain(800, "int").to_string()});
    let long = json!({"schema": record_chain(800, "long").to_string()});
    let before = CURRENT.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);

    assert_eq!(
        call(&app, "POST", "/subjects/chain/versions", int).await,
        (200, json!({"id": 1}))
    );
    let latest = "/compatibility/subjects/chain/versions/latest";
    let (status, body) = call(&app, "POST", latest, long.clone()).await;
    assert_eq!((status, &body), (200, &json!({"is_compatible": true})));
    // FULL checks both ways, and the int chain reading longs is the heavier way: every
    // reader branch against every writer branch.
    let (status, _) = call(
        &app,
        "PUT",
        "/config/chain",
        json!({"compatibility": "FULL"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = call(&app, "POST", latest, long.clone()).await;
    assert_eq!((status, &body), (200, &json!({"is_compatible": false})));
    let (status, body) = call(&app, "POST", "/subjects/chain/versions", long).await;
    assert_eq!((status, &body["error_code"]), (409, &json!(409)));

    let peak = PEAK.load(Ordering::Relaxed) - before;
    assert!(peak < 50 << 20, "peak heap {} MB", peak >> 20);
}
