//! The models of every generated service, loaded once: what the front routes and checks
//! requests by, and what a service's handlers read its error shapes from.

use std::sync::OnceLock;

use wire::Registry;

/// Every generated service's model, loaded once.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut r = Registry::new();
        for s in shapes::SERVICES {
            // The models are compiled in and checked by the shapes and front tests.
            r.add_json(s.model_json)
                .unwrap_or_else(|e| panic!("the {} model does not load: {e}", s.name));
        }
        r
    })
}
