use super::*;

fn grants(text: &[&str]) -> Grants {
    Grants::new(text.iter().map(|t| t.parse().unwrap()).collect())
}

#[test]
fn roles_are_ordered_and_parse() {
    assert!(AccessRole::Viewer < AccessRole::Submitter);
    assert!(AccessRole::Submitter < AccessRole::Operator);
    assert!(AccessRole::Operator < AccessRole::Admin);
    for r in AccessRole::ALL {
        assert_eq!(r.as_str().parse::<AccessRole>().unwrap(), r);
    }
    let e = "root".parse::<AccessRole>().unwrap_err().to_string();
    assert!(e.contains("root") && e.contains("viewer"), "{e}");
}

#[test]
fn bindings_parse_and_name_what_is_wrong() {
    let b: Binding = "analytics=submitter".parse().unwrap();
    assert_eq!(b.namespace, "analytics");
    assert_eq!(b.role, AccessRole::Submitter);
    assert_eq!(b.to_string(), "analytics=submitter");
    assert_eq!("*=viewer".parse::<Binding>().unwrap().namespace, "*");
    for (bad, word) in [
        ("analytics", "NAMESPACE=ROLE"),
        ("Bad_NS=viewer", "Bad_NS"),
        ("a=god", "god"),
        ("=viewer", "\"\""),
        ("a*=viewer", "a*"),
    ] {
        let e = bad.parse::<Binding>().unwrap_err().to_string();
        assert!(e.contains(word), "{bad}: {e}");
    }
}

#[test]
fn role_in_a_namespace_is_the_highest_binding() {
    let g = grants(&["a=viewer", "a=operator", "*=viewer"]);
    assert_eq!(g.role_in("a"), Some(AccessRole::Operator));
    assert_eq!(g.role_in("b"), Some(AccessRole::Viewer));
    assert!(g.allows("a", AccessRole::Operator));
    assert!(!g.allows("a", AccessRole::Admin));
    assert!(!g.allows("b", AccessRole::Submitter));
    assert!(!g.is_admin());
    let only_a = grants(&["a=submitter"]);
    assert_eq!(only_a.role_in("b"), None);
    assert!(!only_a.allows("b", AccessRole::Viewer));
    assert_eq!(only_a.global_role(), None);
    assert_eq!(only_a.highest(), Some(AccessRole::Submitter));
}

#[test]
fn admin_of_one_namespace_is_not_the_global_admin() {
    let g = grants(&["a=admin"]);
    assert!(g.allows("a", AccessRole::Admin));
    assert!(!g.is_admin());
    assert!(grants(&["*=admin"]).is_admin());
    assert!(Grants::everything().is_admin());
    assert!(!Grants::default().allows("a", AccessRole::Viewer));
}

#[test]
fn scope_lists_the_namespaces_with_the_role() {
    let g = grants(&["a=viewer", "b=operator"]);
    assert_eq!(
        g.scope(AccessRole::Viewer),
        Scope::Only(["a".to_string(), "b".to_string()].into())
    );
    assert_eq!(
        g.scope(AccessRole::Operator),
        Scope::Only(["b".to_string()].into())
    );
    assert_eq!(g.scope(AccessRole::Admin), Scope::Only(Default::default()));
    assert!(!g.scope(AccessRole::Admin).contains("b"));
    let w = grants(&["*=viewer", "b=admin"]);
    assert_eq!(w.scope(AccessRole::Viewer), Scope::All);
    assert!(w.scope(AccessRole::Viewer).contains("zzz"));
    assert_eq!(
        w.scope(AccessRole::Submitter),
        Scope::Only(["b".to_string()].into())
    );
}
