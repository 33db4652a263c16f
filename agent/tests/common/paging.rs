//! Paging through a Describe action: one page's keys and `nextToken`, every page with
//! `MaxResults`, and the unpaged answer to compare them with.

use super::Agent;

/// The key of a described item.
pub type Key<'k> = &'k dyn Fn(roxmltree::Node<'_, '_>) -> String;

/// The keys of `set`'s items in one answer, and its `nextToken`.
pub fn page(xml: &str, set: &str, key: Key<'_>) -> (Vec<String>, Option<String>) {
    let doc = roxmltree::Document::parse(xml).unwrap();
    let items = doc
        .descendants()
        .filter(|n| n.has_tag_name("item") && n.parent().is_some_and(|p| p.has_tag_name(set)))
        .map(key)
        .collect();
    let token = doc
        .root_element()
        .children()
        .find(|n| n.has_tag_name("nextToken"))
        .and_then(|n| n.text())
        .map(str::to_string);
    (items, token)
}

/// Every key of `action` page by page (`max` a page), checking each page's size.
pub fn all_pages(agent: &Agent, action: &str, set: &str, max: usize, key: Key<'_>) -> Vec<String> {
    let max_s = max.to_string();
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..100 {
        let mut p = vec![("MaxResults", max_s.as_str())];
        if let Some(t) = &token {
            p.push(("NextToken", t.as_str()));
        }
        let (items, next) = page(&agent.call(action, &p), set, key);
        assert!(
            items.len() <= max,
            "{action}: {} items in a page of {max}",
            items.len()
        );
        out.extend(items);
        match next {
            Some(t) => token = Some(t),
            None => return out,
        }
    }
    panic!("{action} did not end after 100 pages");
}

/// Every key of `action` unpaged, sorted; the answer must carry no token.
pub fn unpaged(agent: &Agent, action: &str, set: &str, key: Key<'_>) -> Vec<String> {
    let (mut items, token) = page(&agent.call(action, &[]), set, key);
    assert_eq!(token, None, "{action} unpaged gave a token");
    items.sort();
    items
}
