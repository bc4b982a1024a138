use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::json;

use serde_json::Value;

use super::render::DECLARATION;
use super::*;

fn preserves_order() -> bool {
    json!({"b": 1, "a": 2})
        .as_object()
        .and_then(|map| map.keys().next().cloned())
        .as_deref()
        == Some("b")
}

fn body(xml: &str) -> &str {
    xml.strip_prefix(DECLARATION).expect("declaration")
}

// ----- rendering -----

#[test]
fn renders_declaration_and_root() {
    let xml = to_xml(&json!({"name": "a"}), None);
    assert_eq!(
        xml,
        r#"<?xml version="1.0" encoding="UTF-8"?><response><name>a</name></response>"#
    );
}

#[test]
fn renders_list_with_list_item() {
    let value = json!({"data": [{"name": "a"}, {"name": "b"}], "nextPage": "x"});
    assert_eq!(
        body(&to_xml(&value, Some("role"))),
        "<response><data><role><name>a</name></role><role><name>b</name></role></data>\
             <nextPage>x</nextPage></response>"
    );
}

#[test]
fn renders_list_without_list_item_as_items() {
    let value = json!({"data": [1, 2]});
    assert_eq!(
        body(&to_xml(&value, None)),
        "<response><data><item>1</item><item>2</item></data></response>"
    );
}

#[test]
fn list_item_applies_only_to_top_level_data_array() {
    let value = json!({"data": {"data": [1]}});
    assert_eq!(
        body(&to_xml(&value, Some("role"))),
        "<response><data><data><item>1</item></data></data></response>"
    );
    // An unusable list item name falls back to `item`.
    assert_eq!(
        body(&to_xml(&json!({"data": [1]}), Some("1x"))),
        "<response><data><item>1</item></data></response>"
    );
}

#[test]
fn renders_nested_arrays() {
    let value = json!({"data": {"roles": ["admin"]}});
    assert_eq!(
        body(&to_xml(&value, Some("user"))),
        "<response><data><roles><role>admin</role></roles></data></response>"
    );
    let value = json!({"matrix": [[1, 2], [], [[3]]]});
    assert_eq!(
        body(&to_xml(&value, None)),
        "<response><matrix><item><item>1</item><item>2</item></item><item/>\
             <item><item><item>3</item></item></item></matrix></response>"
    );
}

#[test]
fn renders_null_with_nil() {
    let value = json!({"a": null, "list": [null, 1], "o": {"b": null}});
    assert_eq!(
        body(&to_xml(&value, None)),
        r#"<response><a nil="true"/><list><item nil="true"/><item>1</item></list><o><b nil="true"/></o></response>"#
    );
}

#[test]
fn renders_scalars_and_empties() {
    // Keys in sorted order: the expectation holds with and without
    // serde_json's `preserve_order`.
    let value = json!({"a": [], "f": false, "i": -3, "o": {}, "s": "", "t": true, "x": 1.5});
    assert_eq!(
        body(&to_xml(&value, None)),
        "<response><a/><f>false</f><i>-3</i><o/><s/><t>true</t><x>1.5</x></response>"
    );
    assert_eq!(body(&to_xml(&json!({}), None)), "<response/>");
}

#[test]
fn renders_non_object_top_level_as_content() {
    assert_eq!(body(&to_xml(&json!("hi"), None)), "<response>hi</response>");
    assert_eq!(
        body(&to_xml(&json!(null), None)),
        r#"<response nil="true"/>"#
    );
    assert_eq!(
        body(&to_xml(&json!([1, "a"]), Some("role"))),
        "<response><item>1</item><item>a</item></response>"
    );
}

#[test]
fn escapes_text_and_attributes() {
    let value = json!({"s": "a & b < c > d \"q\" 'a'", "we\"ird<&>'": "v"});
    assert_eq!(
        body(&to_xml(&value, None)),
        "<response><s>a &amp; b &lt; c &gt; d \"q\" 'a'</s>\
             <entry key=\"we&quot;ird&lt;&amp;&gt;&apos;\">v</entry></response>"
    );
}

#[test]
fn replaces_characters_not_allowed_in_xml() {
    let value = json!({"s": "a\u{0}b\u{1b}c\td\ne\rf\u{FFFE}g\u{FFFF}\u{10FFFF}"});
    assert_eq!(
        body(&to_xml(&value, None)),
        "<response><s>a\u{FFFD}b\u{FFFD}c\td\ne&#13;f\u{FFFD}g\u{FFFD}\u{10FFFF}</s></response>"
    );
    let value = json!({"bad\u{7}key\t": 1});
    assert_eq!(
        body(&to_xml(&value, None)),
        "<response><entry key=\"bad\u{FFFD}key&#9;\">1</entry></response>"
    );
}

#[test]
fn invalid_key_names_become_entries() {
    // Keys in sorted order: the expectation holds with and without
    // serde_json's `preserve_order`.
    let value = json!({
        "": 1, "-x": 3, ".x": 4, "1abc": 2, "XmlThing": 6, "a:b": 7, "e": {"": []},
        "has space": 5, "k": null, "my things": [1], "ok_name-1.2": 8, "xmls": [2],
        "ünïcödé": 9
    });
    assert_eq!(
        body(&to_xml(&value, None)),
        "<response><entry key=\"\">1</entry><entry key=\"-x\">3</entry>\
             <entry key=\".x\">4</entry><entry key=\"1abc\">2</entry>\
             <entry key=\"XmlThing\">6</entry><entry key=\"a:b\">7</entry>\
             <e><entry key=\"\"/></e><entry key=\"has space\">5</entry><k nil=\"true\"/>\
             <entry key=\"my things\"><item>1</item></entry><ok_name-1.2>8</ok_name-1.2>\
             <entry key=\"xmls\"><item>2</item></entry><ünïcödé>9</ünïcödé></response>"
    );
}

#[test]
fn renders_error_envelope() {
    let value = json!({"errors": [{"code": 2012, "message": "m",
            "context": {"expectedStates": ["Running"]}}]});
    let context = "<context><expectedStates><expectedState>Running</expectedState>\
                       </expectedStates></context>";
    // With serde_json's `preserve_order` the fields keep their order,
    // otherwise they are sorted.
    let expected = if preserves_order() {
        format!("<code>2012</code><message>m</message>{context}")
    } else {
        format!("<code>2012</code>{context}<message>m</message>")
    };
    assert_eq!(
        body(&to_xml(&value, None)),
        format!("<response><errors><error>{expected}</error></errors></response>")
    );
}

#[test]
fn keeps_object_key_order() {
    let mut map = serde_json::Map::new();
    map.insert("b".into(), json!(1));
    map.insert("a".into(), json!(2));
    let xml = to_xml(&Value::Object(map.clone()), None);
    let expected: String = map.iter().map(|(k, v)| format!("<{k}>{v}</{k}>")).collect();
    assert_eq!(body(&xml), format!("<response>{expected}</response>"));
}

#[test]
fn singular_cases() {
    let cases = [
        ("policies", "policy"),
        ("addresses", "address"),
        ("boxes", "box"),
        ("matches", "match"),
        ("hashes", "hash"),
        ("buzzes", "buzz"),
        ("roles", "role"),
        ("expectedStates", "expectedState"),
        ("permissions", "permission"),
        ("errors", "error"),
        ("instances", "instance"),
        ("data", "item"),
        ("address", "item"),
        ("info", "item"),
        ("response", "item"),
        ("s", "item"),
        ("", "item"),
    ];
    for (plural, expected) in cases {
        assert_eq!(singular(plural), expected, "singular({plural:?})");
    }
}

// ----- parsing -----

#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
enum State {
    Running,
    Stopped,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Admin {
    email: String,
    login_count: u32,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Instance {
    display_name: String,
    cpu: u32,
    description: Option<String>,
    note: Option<String>,
    #[serde(default)]
    label: Option<String>,
    roles: Vec<String>,
    admin: Admin,
    state: State,
    #[serde(default)]
    tags: Vec<String>,
}

#[test]
fn round_trips_a_struct() {
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
            <instance>
              <displayName>web &amp; db</displayName>
              <cpu> 4 </cpu>
              <description nil="true"/>
              <note>hello <![CDATA[<world>]]></note>
              <roles><role>admin</role><role>viewer</role></roles>
              <admin><email>a@example.com</email><loginCount>7</loginCount></admin>
              <state>Running</state>
              <!-- comment --><?pi ignored?>
            </instance>"#;
    let instance: Instance = from_slice(xml.as_bytes()).unwrap();
    assert_eq!(
        instance,
        Instance {
            display_name: "web & db".into(),
            cpu: 4,
            description: None,
            note: Some("hello <world>".into()),
            label: None,
            roles: vec!["admin".into(), "viewer".into()],
            admin: Admin {
                email: "a@example.com".into(),
                login_count: 7
            },
            state: State::Running,
            tags: vec![],
        }
    );
}

#[test]
fn round_trips_rendered_json() {
    let value = json!({
        "displayName": "x < y", "cpu": 2, "description": null, "note": "n",
        "label": "l", "roles": [], "admin": {"email": "e", "loginCount": 0},
        "state": "Stopped", "tags": ["a"]
    });
    let xml = to_xml(&value, None);
    let instance: Instance = from_slice(xml.as_bytes()).unwrap();
    assert_eq!(instance.display_name, "x < y");
    assert_eq!(instance.description, None);
    assert_eq!(instance.label.as_deref(), Some("l"));
    assert!(instance.roles.is_empty());
    assert_eq!(instance.tags, vec!["a".to_string()]);
    assert_eq!(instance.state, State::Stopped);
    let expected: Instance = serde_json::from_value(value).unwrap();
    assert_eq!(instance, expected);
}

#[test]
fn deny_unknown_fields_rejects_unknown_element() {
    let xml = "<instance><displayName>a</displayName><bogus>1</bogus></instance>";
    let err = from_slice::<Instance>(xml.as_bytes()).unwrap_err();
    assert_eq!(err.kind, XmlErrorKind::Data);
    assert!(err.message.contains("unknown field `bogus`"), "{err}");
}

#[test]
fn missing_field_is_data_error() {
    let err = from_slice::<Admin>(b"<admin><email>e</email></admin>").unwrap_err();
    assert_eq!(err.kind, XmlErrorKind::Data);
    assert!(err.message.contains("missing field `loginCount`"), "{err}");
    assert_eq!(err.path, None);
}

#[test]
fn type_error_carries_path() {
    #[derive(Debug, Deserialize)]
    struct Spec {
        #[allow(dead_code)]
        cpu: u32,
    }
    let err = from_slice::<Spec>(b"<instance><cpu>abc</cpu></instance>").unwrap_err();
    assert_eq!(err.kind, XmlErrorKind::Data);
    assert_eq!(err.path.as_deref(), Some("cpu"));
    assert_eq!(
        err.message,
        "invalid type: expected u32, found text \"abc\""
    );
    assert_eq!(
        err.to_string(),
        "invalid type: expected u32, found text \"abc\" (at `cpu`)"
    );

    let xml = "<instance><displayName>a</displayName><cpu>1</cpu>\
                   <description nil=\"true\"/><note>n</note>\
                   <roles><role>a</role><role><x>1</x></role></roles></instance>";
    let err = from_slice::<Instance>(xml.as_bytes()).unwrap_err();
    assert_eq!(err.path.as_deref(), Some("roles[1]"));

    let xml = "<instance><displayName>a</displayName><cpu>1</cpu>\
                   <description/><note/><roles/><admin><email><b/></email></admin></instance>";
    let err = from_slice::<Instance>(xml.as_bytes()).unwrap_err();
    assert_eq!(err.path.as_deref(), Some("admin.email"));
    assert!(err.message.contains("expected string"), "{err}");
}

#[test]
fn repeated_element_is_data_error() {
    let err = from_slice::<Admin>(b"<admin><email>a</email><email>b</email></admin>").unwrap_err();
    assert_eq!(err.kind, XmlErrorKind::Data);
    assert_eq!(err.message, "repeated element `email`");
    let err = from_slice::<BTreeMap<String, String>>(b"<m><a>1</a><b/><a>2</a></m>").unwrap_err();
    assert_eq!(err.message, "repeated element `a`");
}

#[test]
fn scalar_types() {
    #[derive(Debug, PartialEq, Deserialize)]
    struct All {
        b: bool,
        i8: i8,
        i64: i64,
        u8: u8,
        u64: u64,
        i128: i128,
        f32: f32,
        f64: f64,
        c: char,
        s: String,
        unit: (),
        tuple: (u8, String),
        bytes: serde_json::Value,
    }
    let xml = "<x><b> true </b><i8>-8</i8><i64>-64</i64><u8>8</u8><u64>18446744073709551615</u64>\
                   <i128>-170141183460469231731687303715884105728</i128><f32>1.5</f32>\
                   <f64>-2.5e3</f64><c>é</c><s>  spaced  </s><unit/>\
                   <tuple><a>1</a><b>x</b></tuple><bytes>raw</bytes></x>";
    let all: All = from_slice(xml.as_bytes()).unwrap();
    assert_eq!(
        all,
        All {
            b: true,
            i8: -8,
            i64: -64,
            u8: 8,
            u64: u64::MAX,
            i128: i128::MIN,
            f32: 1.5,
            f64: -2500.0,
            c: 'é',
            s: "  spaced  ".into(),
            unit: (),
            tuple: (1, "x".into()),
            bytes: json!("raw"),
        }
    );

    for (xml, message) in [
        ("<v><b>yes</b></v>", "expected bool, found text \"yes\""),
        ("<v><u8>256</u8></v>", "expected u8, found text \"256\""),
        ("<v><u8>-1</u8></v>", "expected u8, found text \"-1\""),
        ("<v><f64>NaN</f64></v>", "expected f64, found text \"NaN\""),
        (
            "<v><f32>1e39</f32></v>",
            "expected f32, found text \"1e39\"",
        ),
        (
            "<v><c>ab</c></v>",
            "expected a character, found text \"ab\"",
        ),
        ("<v><s nil=\"true\"/></v>", "expected string, found nil"),
        (
            "<v><unit>x</unit></v>",
            "expected an empty element, found text \"x\"",
        ),
    ] {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct V {
            b: Option<bool>,
            u8: Option<u8>,
            f64: Option<f64>,
            f32: Option<f32>,
            c: Option<char>,
            s: Option<()>,
            unit: Option<()>,
        }
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct S {
            s: String,
        }
        let err = if xml.contains("<s ") {
            from_slice::<S>(xml.as_bytes()).unwrap_err()
        } else {
            from_slice::<V>(xml.as_bytes()).unwrap_err()
        };
        assert_eq!(err.kind, XmlErrorKind::Data, "{xml}");
        assert!(err.message.contains(message), "{xml}: {err}");
    }
}

#[test]
fn bytes_and_newtypes() {
    #[derive(Debug, PartialEq, Deserialize)]
    struct Id(String);
    #[derive(Debug, PartialEq, Deserialize)]
    struct Marker;
    #[derive(Debug, PartialEq, Deserialize)]
    struct W {
        id: Id,
        marker: Marker,
        #[serde(with = "bytes_as_vec")]
        raw: Vec<u8>,
    }
    mod bytes_as_vec {
        pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
            struct V;
            impl serde::de::Visitor<'_> for V {
                type Value = Vec<u8>;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                    Ok(v.to_vec())
                }
            }
            d.deserialize_bytes(V)
        }
    }
    let w: W = from_slice(b"<w><id>i-1</id><marker/><raw>abc</raw></w>").unwrap();
    assert_eq!(
        w,
        W {
            id: Id("i-1".into()),
            marker: Marker,
            raw: b"abc".to_vec()
        }
    );
}

#[test]
fn enums() {
    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "camelCase")]
    enum Action {
        Start,
        Resize(u32),
        Move { zone: String },
        Pair(u8, u8),
    }
    #[derive(Debug, Deserialize)]
    struct Req {
        action: Action,
    }
    let parse = |xml: &str| from_slice::<Req>(xml.as_bytes()).map(|r| r.action);
    assert_eq!(
        parse("<r><action> start </action></r>").unwrap(),
        Action::Start
    );
    assert_eq!(
        parse("<r><action><start/></action></r>").unwrap(),
        Action::Start
    );
    assert_eq!(
        parse("<r><action><resize>4</resize></action></r>").unwrap(),
        Action::Resize(4)
    );
    assert_eq!(
        parse("<r><action><move><zone>z1</zone></move></action></r>").unwrap(),
        Action::Move { zone: "z1".into() }
    );
    assert_eq!(
        parse("<r><action><pair><i>1</i><i>2</i></pair></action></r>").unwrap(),
        Action::Pair(1, 2)
    );
    let err = parse("<r><action>fly</action></r>").unwrap_err();
    assert_eq!(err.kind, XmlErrorKind::Data);
    assert!(err.message.contains("unknown variant `fly`"), "{err}");
    assert_eq!(err.path.as_deref(), Some("action"));
    assert!(parse("<r><action><resize>x</resize></action></r>").is_err());
    assert!(parse("<r><action><a/><b/></action></r>").is_err());
    assert!(parse("<r><action>resize</action></r>").is_err());
    assert!(parse("<r><action nil=\"true\"/></r>").is_err());
}

#[test]
fn defaults_and_maps() {
    #[derive(Debug, PartialEq, Deserialize, Default)]
    #[serde(default, rename_all = "camelCase")]
    struct Opts {
        max_count: u32,
        names: Vec<String>,
        labels: BTreeMap<String, String>,
        ports: BTreeMap<u16, bool>,
    }
    let opts: Opts = from_slice(b"<opts/>").unwrap();
    assert_eq!(opts, Opts::default());
    let xml = "<opts>\n  <labels><env>prod</env><entry key=\"team name\">core</entry></labels>\n\
                   <ports><entry key=\"80\">true</entry></ports></opts>";
    let opts: Opts = from_slice(xml.as_bytes()).unwrap();
    assert_eq!(opts.labels.get("env").map(String::as_str), Some("prod"));
    assert_eq!(
        opts.labels.get("team name").map(String::as_str),
        Some("core")
    );
    assert_eq!(opts.ports.get(&80), Some(&true));
    let err = from_slice::<Opts>(b"<opts><names>text</names></opts>").unwrap_err();
    assert_eq!(err.kind, XmlErrorKind::Data);
    assert_eq!(err.path.as_deref(), Some("names"));
}

#[test]
fn value_target() {
    let xml = "<instance><name>a</name><cpu>4</cpu><gone nil=\"true\"/>\
                   <roles><role>admin</role></roles><tags><t>x</t><t>y</t></tags>\
                   <meta><a>1</a><b/></meta><empty/></instance>";
    let value: Value = from_slice(xml.as_bytes()).unwrap();
    assert_eq!(
        value,
        json!({"name": "a", "cpu": "4", "gone": null, "roles": ["admin"],
                   "tags": ["x", "y"], "meta": {"a": "1", "b": ""}, "empty": ""})
    );
    // Rendering and parsing back gives the same shape (scalars become text).
    let original = json!({"errors": [{"code": "1", "context": {"expectedStates": ["A", "B"]}}]});
    let parsed: Value = from_slice(to_xml(&original, None).as_bytes()).unwrap();
    assert_eq!(parsed, original);
    let repeated = from_slice::<Value>(b"<x><a>1</a><b/><a>2</a></x>").unwrap_err();
    assert_eq!(repeated.message, "repeated element `a`");
}

#[test]
fn root_name_is_not_checked_and_root_may_be_nil() {
    let admin: Admin =
        from_slice(b"<whatever><email>e</email><loginCount>1</loginCount></whatever>").unwrap();
    assert_eq!(admin.login_count, 1);
    let none: Option<Admin> = from_slice(b"<admin nil=\"true\"/>").unwrap();
    assert_eq!(none, None);
    let err = from_slice::<Admin>(b"<admin>text</admin>").unwrap_err();
    assert_eq!(err.kind, XmlErrorKind::Data);
    assert_eq!(err.path, None);
}

#[test]
fn entities_and_bom() {
    let s: BTreeMap<String, String> =
        from_slice("\u{FEFF}<x><a>&lt;&gt;&amp;&quot;&apos;&#65;&#x42;</a></x>".as_bytes())
            .unwrap();
    assert_eq!(s["a"], "<>&\"'AB");
}

fn syntax_error(input: &[u8]) -> XmlError {
    let err = from_slice::<Value>(input).unwrap_err();
    assert_eq!(err.kind, XmlErrorKind::Syntax, "{input:?}: {err}");
    assert_eq!(err.path, None);
    err
}

#[test]
fn doctype_is_rejected() {
    let xml = r#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>"#;
    let err = syntax_error(xml.as_bytes());
    assert!(err.message.contains("DOCTYPE"), "{err}");
    syntax_error(b"<x>&a;</x>");
}

#[test]
fn syntax_errors() {
    for (input, fragment) in [
        (&b""[..], "no root element"),
        (b"   ", "no root element"),
        (b"<a/><b/>", "more than one root"),
        (b"<a></a><b></b>", "more than one root"),
        (b"text<a/>", "text outside"),
        (b"<a/>text", "text outside"),
        (b"<a/><![CDATA[x]]>", "CDATA outside"),
        (b"<a><b></a>", "malformed"),
        (b"<a>", "not closed"),
        (b"<a><b>", "not closed"),
        (b"</a>", "malformed"),
        (b"<a b></a>", "attribute"),
        (b"<a b=\"1\" b=\"2\"/>", "attribute"),
        (b"<a>\xff</a>", "UTF-8"),
        (b"<a>x<b/></a>", "mixes text"),
        (
            b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a/>",
            "encoding",
        ),
    ] {
        let err = syntax_error(input);
        assert!(
            err.message.contains(fragment),
            "{:?}: {err}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn nesting_limit() {
    let ok = format!("{}{}", "<a>".repeat(64), "</a>".repeat(64));
    assert!(from_slice::<Value>(ok.as_bytes()).is_ok());
    let deep = format!("{}{}", "<a>".repeat(65), "</a>".repeat(65));
    let err = syntax_error(deep.as_bytes());
    assert!(err.message.contains("deeper than 64"), "{err}");
    let deep_empty = format!("{}<a/>{}", "<a>".repeat(64), "</a>".repeat(64));
    syntax_error(deep_empty.as_bytes());
    let huge = "<a>".repeat(100_000);
    syntax_error(huge.as_bytes());
}

#[test]
fn whitespace_between_elements_is_ignored() {
    let roles: Vec<String> =
        from_slice(b"\n<roles>\n  <role>a</role>\n  <role> b </role>\n</roles>\n").unwrap();
    assert_eq!(roles, vec!["a".to_string(), " b ".to_string()]);
    let empty: Vec<String> = from_slice(b"<roles>\n</roles>").unwrap();
    assert!(empty.is_empty());
}

#[test]
fn never_panics_on_garbage() {
    let samples: Vec<Vec<u8>> = vec![
        b"<".to_vec(),
        b"<a".to_vec(),
        b"<a><".to_vec(),
        b"<a></".to_vec(),
        b"<a x=".to_vec(),
        b"<a x='".to_vec(),
        b"<!--".to_vec(),
        b"<![CDATA[".to_vec(),
        b"<?xml".to_vec(),
        b"<!DOCTYPE".to_vec(),
        b"&amp;".to_vec(),
        b"<a>&#0;</a>".to_vec(),
        b"<a>&#xD800;</a>".to_vec(),
        b"<a>&#99999999999;</a>".to_vec(),
        b"<a>&</a>".to_vec(),
        b"\x00\x01\x02".to_vec(),
        vec![0xfe, 0xff, 0, b'<'],
        b"<a><b nil=\"true\">x</b></a>".to_vec(),
    ];
    let full = r#"<?xml version="1.0"?><instance><displayName>a</displayName><cpu>1</cpu><description nil="true"/><note><![CDATA[x]]></note><roles><role>a</role></roles><admin><email>e</email><loginCount>2</loginCount></admin><state>Running</state></instance>"#;
    assert!(from_slice::<Instance>(full.as_bytes()).is_ok());
    let mut inputs = samples;
    for end in 0..full.len() {
        inputs.push(full.as_bytes()[..end].to_vec());
    }
    // Deterministic pseudo-random byte soup and mutations of a valid document.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let alphabet = b"<>/=\"'&;!?[]-ab x\n#CDATA";
    for _ in 0..2000 {
        let len = (next() % 64) as usize;
        let soup: Vec<u8> = (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect();
        inputs.push(soup);
        let mut mutated = full.as_bytes().to_vec();
        let at = (next() % mutated.len() as u64) as usize;
        mutated[at] = alphabet[(next() % alphabet.len() as u64) as usize];
        inputs.push(mutated);
    }
    for input in &inputs {
        let _ = from_slice::<Value>(input);
        let _ = from_slice::<Instance>(input);
        let _ = from_slice::<Vec<State>>(input);
        let _ = from_slice::<(u8, Option<String>)>(input);
    }
}

#[test]
fn large_documents_stay_linear() {
    let mut xml = String::from("<m>");
    for i in 0..50_000 {
        xml.push_str(&format!("<k{i}>v</k{i}>"));
    }
    xml.push_str("</m>");
    let map: BTreeMap<String, String> = from_slice(xml.as_bytes()).unwrap();
    assert_eq!(map.len(), 50_000);
    let value: Value = from_slice(xml.as_bytes()).unwrap();
    assert_eq!(value.as_object().map(serde_json::Map::len), Some(50_000));
}

#[test]
fn error_display() {
    let err = syntax_error(b"<a>");
    assert!(err.to_string().starts_with("invalid XML: "), "{err}");
    let boxed: Box<dyn std::error::Error> = Box::new(err);
    assert!(!boxed.to_string().is_empty());
}
