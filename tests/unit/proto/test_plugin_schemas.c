/* Plugin config schemas: the registry (names, Kong priorities, order), each plugin's defaults
 * as the Admin API returns them, each refusal with Kong's message and error shape, form
 * coercion of nested config, refused scopes and protocols, and re-validation stability.
 *
 * JSON in this file is written with ` for " to stay readable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/plugin_schemas.h"
#include "proto/schema.h"

#define UUID1 "4e8f3f13-6bd1-4ba5-9e3e-111111111111"

static json_t *parse(const char *text)
{
    char buf[4096];
    size_t n = strlen(text);
    assert_true(n < sizeof buf);
    for (size_t i = 0; i <= n; i++)
        buf[i] = text[i] == '`' ? '"' : text[i];
    json_error_t je;
    json_t *j = json_loads(buf, JSON_DECODE_ANY, &je);
    if (j == NULL)
        fail_msg("bad test JSON: %s: %s", buf, je.text);
    return j;
}

static json_t *run(const char *text, sl_validate_mode mode, int *n, json_t **errors)
{
    const sl_entity *e = sl_entity_by_name("plugins");
    assert_non_null(e);
    json_t *j = parse(text);
    *n = sl_schema_validate(e, j, mode, errors);
    return j;
}

/* Asserts the plugin validates; returns it (caller frees). */
static json_t *valid(const char *text, sl_validate_mode mode)
{
    json_t *errors;
    int n;
    json_t *j = run(text, mode, &n, &errors);
    if (n != 0)
        fail_msg("%s: unexpected errors %s", text, json_dumps(errors, JSON_SORT_KEYS));
    return j;
}

/* Asserts validation fails with exactly the errors object expect. */
static void invalid(const char *text, sl_validate_mode mode, const char *expect)
{
    json_t *errors;
    int n;
    json_t *j = run(text, mode, &n, &errors);
    json_t *want = parse(expect);
    if (errors == NULL || !json_equal(errors, want))
        fail_msg("%s:\n  got  %s\n  want %s", text,
                 errors ? json_dumps(errors, JSON_SORT_KEYS) : "(none)",
                 json_dumps(want, JSON_SORT_KEYS));
    assert_true(n > 0);
    json_decref(want);
    json_decref(errors);
    json_decref(j);
}

/* The value at a dotted path ("config.redis.port"). */
static const json_t *get(const json_t *j, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save, *k = strtok_r(buf, ".", &save); k && j; k = strtok_r(NULL, ".", &save))
        j = json_object_get(j, k);
    if (j == NULL)
        fail_msg("no %s", path);
    return j;
}

static void equals(const json_t *j, const char *path, const char *expect)
{
    json_t *want = parse(expect);
    const json_t *got = get(j, path);
    if (!json_equal(got, want))
        fail_msg("%s: got %s want %s", path, json_dumps(got, JSON_ENCODE_ANY),
                 json_dumps(want, JSON_ENCODE_ANY));
    json_decref(want);
}

/* Form numbers come back as JSON reals ("5" -> 5.0); compare their values. */
static void number(const json_t *j, const char *path, double expect)
{
    const json_t *v = get(j, path);
    if (!json_is_number(v) || json_number_value(v) != expect)
        fail_msg("%s: got %s want %g", path, json_dumps(v, JSON_ENCODE_ANY), expect);
}

/* ---------------- registry ---------------- */

static void test_registry_names_priorities_order(void **state)
{
    static const struct {
        const char *name;
        int priority;
    } kong[] = {{"correlation-id", 100001},
                {"cors", 2000},
                {"key-auth", 1250},
                {"basic-auth", 1100},
                {"ip-restriction", 990},
                {"request-size-limiting", 951},
                {"acl", 950},
                {"rate-limiting", 910},
                {"request-transformer", 801},
                {"response-transformer", 800},
                {"prometheus", 13},
                {"http-log", 12},
                {"file-log", 9}};
    size_t n;
    const sl_plugin_schema *const *all = sl_plugin_schemas(&n);
    assert_int_equal(n, sizeof kong / sizeof kong[0]);
    for (size_t i = 0; i < n; i++) {
        const sl_plugin_schema *p = sl_plugin_schema_find(kong[i].name);
        assert_non_null(p);
        assert_int_equal(p->priority, kong[i].priority);
        if (i > 0) /* the data plane runs them in this order */
            assert_true(all[i - 1]->priority > all[i]->priority);
        assert_non_null(p->config_fields);
    }
    assert_null(sl_plugin_schema_find("no-such-plugin"));
    assert_null(sl_plugin_schema_find("KEY-AUTH"));
    assert_null(sl_plugin_schema_find(NULL));
}

static void test_unknown_plugin(void **state)
{
    invalid("{`name`:`world-domination`}", SL_VALIDATE_JSON,
            "{`name`:`plugin 'world-domination' not enabled; add it to the 'plugins' "
            "configuration property`}");
    json_t *errors;
    int n;
    json_t *j = run("{`name`:`nope`,`config`:{`x`:1}}", SL_VALIDATE_JSON, &n, &errors);
    char *msg = sl_schema_violation_message(errors, n);
    assert_string_equal(msg, "schema violation (name: plugin 'nope' not enabled; add it to the "
                             "'plugins' configuration property)");
    free(msg);
    json_decref(errors);
    json_decref(j);
}

/* ---------------- defaults ---------------- */

static void test_auth_defaults(void **state)
{
    json_t *p = valid("{`name`:`key-auth`}", SL_VALIDATE_JSON);
    equals(p, "config.key_names", "[`apikey`]");
    equals(p, "config.key_in_header", "true");
    equals(p, "config.key_in_query", "true");
    equals(p, "config.key_in_body", "false");
    equals(p, "config.hide_credentials", "false");
    equals(p, "config.run_on_preflight", "true");
    equals(p, "config.anonymous", "null");
    equals(p, "config.realm", "null");
    json_decref(p);

    p = valid("{`name`:`basic-auth`}", SL_VALIDATE_JSON);
    equals(p, "config.realm", "`service`");
    equals(p, "config.hide_credentials", "false");
    equals(p, "config.anonymous", "null");
    json_decref(p);

    p = valid("{`name`:`acl`,`config`:{`allow`:[`admins`]}}", SL_VALIDATE_JSON);
    equals(p, "config.allow", "[`admins`]");
    equals(p, "config.deny", "null");
    equals(p, "config.hide_groups_header", "false");
    equals(p, "config.always_use_authenticated_groups", "false");
    json_decref(p);
}

static void test_rate_limiting_defaults(void **state)
{
    json_t *p = valid("{`name`:`rate-limiting`,`config`:{`minute`:5}}", SL_VALIDATE_JSON);
    equals(p, "config.minute", "5");
    equals(p, "config.second", "null");
    equals(p, "config.policy", "`local`");
    equals(p, "config.limit_by", "`consumer`");
    equals(p, "config.fault_tolerant", "true");
    equals(p, "config.hide_client_headers", "false");
    equals(p, "config.error_code", "429");
    equals(p, "config.error_message", "`API rate limit exceeded`");
    equals(p, "config.sync_rate", "-1");
    equals(p, "config.redis.port", "6379");
    equals(p, "config.redis.timeout", "2000");
    equals(p, "config.redis.database", "0");
    equals(p, "config.redis.ssl", "false");
    equals(p, "config.redis.host", "null");
    json_decref(p);
}

static void test_traffic_defaults(void **state)
{
    json_t *p = valid("{`name`:`ip-restriction`,`config`:{`allow`:[`10.0.0.0/8`,`::1`,"
                      "`2001:db8::/32`],`deny`:[`192.168.1.1`]}}",
                      SL_VALIDATE_JSON);
    equals(p, "config.allow", "[`10.0.0.0/8`,`::1`,`2001:db8::/32`]");
    equals(p, "config.status", "null");
    equals(p, "config.message", "null");
    json_decref(p);

    p = valid("{`name`:`cors`}", SL_VALIDATE_JSON);
    equals(p, "config.methods",
           "[`GET`,`HEAD`,`PUT`,`PATCH`,`POST`,`DELETE`,`OPTIONS`,`TRACE`,`CONNECT`]");
    equals(p, "config.credentials", "false");
    equals(p, "config.preflight_continue", "false");
    equals(p, "config.private_network", "false");
    equals(p, "config.allow_origin_absent", "true");
    equals(p, "config.origins", "null");
    equals(p, "config.max_age", "null");
    json_decref(p);

    p = valid("{`name`:`request-size-limiting`}", SL_VALIDATE_JSON);
    equals(p, "config.allowed_payload_size", "128");
    equals(p, "config.size_unit", "`megabytes`");
    equals(p, "config.require_content_length", "false");
    json_decref(p);

    p = valid("{`name`:`correlation-id`}", SL_VALIDATE_JSON);
    equals(p, "config.header_name", "`Kong-Request-ID`");
    equals(p, "config.generator", "`uuid#counter`");
    equals(p, "config.echo_downstream", "false");
    json_decref(p);
}

static void test_transformer_defaults(void **state)
{
    json_t *p = valid("{`name`:`request-transformer`,`config`:{`add`:{`headers`:[`x-a:1`]}}}",
                      SL_VALIDATE_JSON);
    equals(p, "config.add.headers", "[`x-a:1`]");
    equals(p, "config.add.querystring", "[]");
    equals(p, "config.add.body", "[]");
    equals(p, "config.remove.headers", "[]");
    equals(p, "config.rename.querystring", "[]");
    equals(p, "config.append.body", "[]");
    equals(p, "config.replace.uri", "null");
    equals(p, "config.http_method", "null");
    json_decref(p);

    p = valid("{`name`:`response-transformer`}", SL_VALIDATE_JSON);
    equals(p, "config.add.json_types", "[]");
    equals(p, "config.add.json", "[]");
    equals(p, "config.remove.headers", "[]");
    equals(p, "config.rename.json", "[]");
    equals(p, "config.replace.headers", "[]");
    json_decref(p);
}

static void test_log_and_metrics_defaults(void **state)
{
    json_t *p = valid("{`name`:`prometheus`}", SL_VALIDATE_JSON);
    for (const char *const *m =
             (const char *const[]){"config.per_consumer", "config.status_code_metrics",
                                   "config.latency_metrics", "config.bandwidth_metrics",
                                   "config.upstream_health_metrics", NULL};
         *m; m++)
        equals(p, *m, "false");
    json_decref(p);

    p = valid("{`name`:`http-log`,`config`:{`http_endpoint`:`http://logs.internal:9000/in`}}",
              SL_VALIDATE_JSON);
    equals(p, "config.method", "`POST`");
    equals(p, "config.content_type", "`application/json`");
    equals(p, "config.timeout", "10000");
    equals(p, "config.keepalive", "60000");
    equals(p, "config.headers", "null");
    equals(p, "config.queue.max_batch_size", "1");
    equals(p, "config.queue.max_coalescing_delay", "1");
    equals(p, "config.queue.max_entries", "10000");
    equals(p, "config.queue.max_bytes", "null");
    equals(p, "config.queue.max_retry_time", "60");
    equals(p, "config.queue.initial_retry_delay", "0.01");
    equals(p, "config.queue.max_retry_delay", "60");
    equals(p, "config.queue.concurrency_limit", "1");
    json_decref(p);

    p = valid("{`name`:`file-log`,`config`:{`path`:`/var/log/sluice/requests.log`}}",
              SL_VALIDATE_JSON);
    equals(p, "config.reopen", "false");
    equals(p, "config.custom_fields_by_lua", "null");
    json_decref(p);
}

/* ---------------- refusals ---------------- */

static void test_rate_limiting_refusals(void **state)
{
    invalid("{`name`:`rate-limiting`}", SL_VALIDATE_JSON,
            "{`@entity`:[`at least one of these fields must be non-empty: 'config.second', "
            "'config.minute', 'config.hour', 'config.day', 'config.month', 'config.year'`]}");
    invalid("{`name`:`rate-limiting`,`config`:{`second`:10,`minute`:5}}", SL_VALIDATE_JSON,
            "{`config`:`The limit for minute(5.0) cannot be lower than the limit for "
            "second(10.0)`}");
    invalid("{`name`:`rate-limiting`,`config`:{`hour`:100,`year`:99.5}}", SL_VALIDATE_JSON,
            "{`config`:`The limit for year(99.5) cannot be lower than the limit for "
            "hour(100.0)`}");
    invalid("{`name`:`rate-limiting`,`config`:{`minute`:0}}", SL_VALIDATE_JSON,
            "{`config`:{`minute`:`value must be greater than 0`}}");
    invalid("{`name`:`rate-limiting`,`config`:{`minute`:`5`}}", SL_VALIDATE_JSON,
            "{`config`:{`minute`:`expected a number`}}");
    invalid("{`name`:`rate-limiting`,`config`:{`minute`:5,`policy`:`memcached`}}", SL_VALIDATE_JSON,
            "{`config`:{`policy`:`expected one of: local, cluster, redis`}}");
    invalid("{`name`:`rate-limiting`,`config`:{`minute`:5,`policy`:`cluster`}}", SL_VALIDATE_JSON,
            "{`config`:{`policy`:`policy 'cluster' is not supported in hybrid or DB-less mode; "
            "only 'local' is supported (counters are kept per data plane node)`}}");
    invalid("{`name`:`rate-limiting`,`config`:{`minute`:5,`policy`:`redis`,"
            "`redis`:{`host`:`redis.internal`}}}",
            SL_VALIDATE_JSON,
            "{`config`:{`policy`:`policy 'redis' is not supported by this gateway; only 'local' "
            "is supported (counters are kept per data plane node)`}}");
    invalid("{`name`:`rate-limiting`,`config`:{`minute`:5,`sync_rate`:10}}", SL_VALIDATE_JSON,
            "{`config`:`sync_rate can only be used with the redis policy`}");
    invalid("{`name`:`rate-limiting`,`config`:{`minute`:5,`limit_by`:`header`}}", SL_VALIDATE_JSON,
            "{`config`:{`header_name`:`required field missing`},`@entity`:[`failed conditional "
            "validation given value of field 'config.limit_by'`]}");
    invalid("{`name`:`rate-limiting`,`config`:{`minute`:5,`limit_by`:`path`,`path`:`x`}}",
            SL_VALIDATE_JSON, "{`config`:{`path`:`should start with: /`}}");
    invalid("{`name`:`rate-limiting`,`config`:{`minute`:5,`limit_by`:`user`}}", SL_VALIDATE_JSON,
            "{`config`:{`limit_by`:`expected one of: consumer, credential, ip, service, header, "
            "path`}}");
    invalid("{`name`:`rate-limiting`,`config`:{`minute`:5,`redis`:{`port`:70000}}}",
            SL_VALIDATE_JSON,
            "{`config`:{`redis`:{`port`:`value should be between 0 and 65535`}}}");
    invalid("{`name`:`rate-limiting`,`config`:{`minute`:5,`window`:1}}", SL_VALIDATE_JSON,
            "{`config`:{`window`:`unknown field`}}");

    json_t *p = valid("{`name`:`rate-limiting`,`config`:{`second`:5,`minute`:5,`hour`:1000,"
                      "`limit_by`:`header`,`header_name`:`X-Tenant`}}",
                      SL_VALIDATE_JSON);
    equals(p, "config.header_name", "`X-Tenant`");
    json_decref(p);

    json_t *errors;
    int n;
    p = run("{`name`:`rate-limiting`}", SL_VALIDATE_JSON, &n, &errors);
    char *msg = sl_schema_violation_message(errors, n);
    assert_string_equal(msg, "schema violation (at least one of these fields must be non-empty: "
                             "'config.second', 'config.minute', 'config.hour', 'config.day', "
                             "'config.month', 'config.year')");
    free(msg);
    json_decref(errors);
    json_decref(p);
}

static void test_acl_and_ip_refusals(void **state)
{
    invalid("{`name`:`acl`,`config`:{`allow`:[`a`],`deny`:[`b`]}}", SL_VALIDATE_JSON,
            "{`@entity`:[`only one of these fields must be non-empty: 'config.allow', "
            "'config.deny'`]}");
    invalid("{`name`:`acl`}", SL_VALIDATE_JSON,
            "{`@entity`:[`only one of these fields must be non-empty: 'config.allow', "
            "'config.deny'`,`at least one of these fields must be non-empty: 'config.allow', "
            "'config.deny'`]}");
    invalid("{`name`:`acl`,`config`:{`allow`:[]}}", SL_VALIDATE_JSON,
            "{`@entity`:[`only one of these fields must be non-empty: 'config.allow', "
            "'config.deny'`,`at least one of these fields must be non-empty: 'config.allow', "
            "'config.deny'`]}");
    json_t *p = valid("{`name`:`acl`,`config`:{`deny`:[`blocked`]}}", SL_VALIDATE_JSON);
    json_decref(p);

    invalid("{`name`:`ip-restriction`}", SL_VALIDATE_JSON,
            "{`@entity`:[`at least one of these fields must be non-empty: 'config.allow', "
            "'config.deny'`]}");
    invalid("{`name`:`ip-restriction`,`config`:{`allow`:[`10.0.0.1`,`hello`,`10.0.0.0/33`]}}",
            SL_VALIDATE_JSON,
            "{`config`:{`allow`:[null,`invalid ip or cidr range: 'hello'`,`invalid ip or cidr "
            "range: '10.0.0.0/33'`]}}");
    invalid("{`name`:`ip-restriction`,`config`:{`deny`:[`::1/129`]}}", SL_VALIDATE_JSON,
            "{`config`:{`deny`:[`invalid ip or cidr range: '::1/129'`]}}");
    invalid("{`name`:`ip-restriction`,`config`:{`deny`:[`::1`],`status`:42}}", SL_VALIDATE_JSON,
            "{`config`:{`status`:`value should be between 100 and 999`}}");
}

static void test_other_refusals(void **state)
{
    invalid("{`name`:`key-auth`,`config`:{`key_names`:[`api key`]}}", SL_VALIDATE_JSON,
            "{`config`:{`key_names`:[`bad header name 'api key', allowed characters are A-Z, "
            "a-z, 0-9, '_', and '-'`]}}");
    invalid("{`name`:`key-auth`,`config`:{`key_names`:null}}", SL_VALIDATE_JSON,
            "{`config`:{`key_names`:`required field missing`}}");
    invalid("{`name`:`cors`,`config`:{`origins`:[`*`,`https://(a`]}}", SL_VALIDATE_JSON,
            "{`config`:{`origins`:[null,`'https://(a' is not a valid regex`]}}");
    invalid("{`name`:`cors`,`config`:{`methods`:[`GET`,`FETCH`]}}", SL_VALIDATE_JSON,
            "{`config`:{`methods`:[null,`expected one of: GET, HEAD, PUT, PATCH, POST, DELETE, "
            "OPTIONS, TRACE, CONNECT`]}}");
    invalid("{`name`:`request-size-limiting`,`config`:{`size_unit`:`gigabytes`}}", SL_VALIDATE_JSON,
            "{`config`:{`size_unit`:`expected one of: megabytes, kilobytes, bytes`}}");
    invalid("{`name`:`correlation-id`,`config`:{`generator`:`random`}}", SL_VALIDATE_JSON,
            "{`config`:{`generator`:`expected one of: uuid, uuid#counter, tracker`}}");
    invalid("{`name`:`request-transformer`,`config`:{`add`:{`headers`:[`x-a:1`,`nocolon`]},"
            "`remove`:{`headers`:[`bad header`]},`http_method`:`get`}}",
            SL_VALIDATE_JSON,
            "{`config`:{`add`:{`headers`:[null,`invalid value: nocolon`]},`remove`:{`headers`:"
            "[`'bad header' is not a valid header`]},`http_method`:`invalid value: get`}}");
    invalid("{`name`:`request-transformer`,`config`:{`rename`:{`headers`:[`x-old:x new`]}}}",
            SL_VALIDATE_JSON,
            "{`config`:{`rename`:{`headers`:[`'x new' is not a valid header`]}}}");
    invalid("{`name`:`response-transformer`,`config`:{`add`:{`json_types`:[`date`]}}}",
            SL_VALIDATE_JSON,
            "{`config`:{`add`:{`json_types`:[`expected one of: boolean, number, string`]}}}");
    invalid("{`name`:`file-log`}", SL_VALIDATE_JSON,
            "{`config`:{`path`:`required field missing`}}");
    invalid("{`name`:`file-log`,`config`:{`path`:`/tmp/a*b.log`}}", SL_VALIDATE_JSON,
            "{`config`:{`path`:`not a valid filename`}}");
    invalid("{`name`:`file-log`,`config`:{`path`:`/tmp/a.log`,`custom_fields_by_lua`:"
            "{`x`:`return 1`}}}",
            SL_VALIDATE_JSON,
            "{`config`:{`custom_fields_by_lua`:`Lua code is not supported by this gateway; "
            "remove it`}}");
}

static void test_http_log_refusals(void **state)
{
    invalid("{`name`:`http-log`}", SL_VALIDATE_JSON,
            "{`config`:{`http_endpoint`:`required field missing`}}");
    invalid("{`name`:`http-log`,`config`:{`http_endpoint`:`logs.internal`}}", SL_VALIDATE_JSON,
            "{`config`:{`http_endpoint`:`missing host in url`}}");
    invalid("{`name`:`http-log`,`config`:{`http_endpoint`:`ftp://logs.internal/`}}",
            SL_VALIDATE_JSON,
            "{`config`:{`http_endpoint`:`unsupported scheme 'ftp' in url; use http or https`}}");
    invalid("{`name`:`http-log`,`config`:{`http_endpoint`:`http://a/`,`method`:`GET`}}",
            SL_VALIDATE_JSON, "{`config`:{`method`:`expected one of: POST, PUT, PATCH`}}");
    invalid("{`name`:`http-log`,`config`:{`http_endpoint`:`http://a/`,`queue`:{"
            "`concurrency_limit`:2,`initial_retry_delay`:0,`max_entries`:0}}}",
            SL_VALIDATE_JSON,
            "{`config`:{`queue`:{`concurrency_limit`:`expected one of: -1, 1`,"
            "`initial_retry_delay`:`value should be between 0.001 and 1000000`,"
            "`max_entries`:`value should be between 1 and 1000000`}}}");
    invalid("{`name`:`http-log`,`config`:{`http_endpoint`:`http://a/`,`headers`:{`host`:`x`}}}",
            SL_VALIDATE_JSON, "{`config`:{`headers`:`cannot contain 'Host' header`}}");
    invalid("{`name`:`http-log`,`config`:{`http_endpoint`:`http://a/`,`headers`:{`X-A`:[`x`]}}}",
            SL_VALIDATE_JSON, "{`config`:{`headers`:`expected a string`}}");
    invalid("{`name`:`http-log`,`config`:{`http_endpoint`:`https://u:p@a/`,`headers`:"
            "{`authorization`:`Basic x`}}}",
            SL_VALIDATE_JSON,
            "{`config`:`specifying both an 'Authorization' header and user info in "
            "'http_endpoint' is not allowed`}");
    json_t *p = valid("{`name`:`http-log`,`config`:{`http_endpoint`:`https://u:p@[::1]:8443/x`,"
                      "`headers`:{`X-Token`:`t`},`queue`:{`max_batch_size`:50,"
                      "`concurrency_limit`:-1}}}",
                      SL_VALIDATE_JSON);
    equals(p, "config.queue.max_batch_size", "50");
    equals(p, "config.queue.max_entries", "10000");
    equals(p, "config.headers", "{`X-Token`:`t`}");
    json_decref(p);
}

/* ---------------- form input, scopes, protocols ---------------- */

static void test_form_coercion(void **state)
{
    /* config.minute=5&config.fault_tolerant=false&config.redis_port=6380 */
    json_t *p = valid("{`name`:`rate-limiting`,`config`:{`minute`:`5`,`fault_tolerant`:`false`,"
                      "`redis_port`:`6380`,`hour`:`1e3`}}",
                      SL_VALIDATE_FORM);
    number(p, "config.minute", 5);
    number(p, "config.hour", 1000);
    equals(p, "config.fault_tolerant", "false");
    equals(p, "config.redis.port", "6380");
    assert_null(json_object_get(get(p, "config"), "redis_port"));
    json_decref(p);

    invalid("{`name`:`rate-limiting`,`config`:{`minute`:`five`}}", SL_VALIDATE_FORM,
            "{`config`:{`minute`:`expected a number`}}");

    /* config.allow=10.0.0.1: one value becomes a one-element array */
    p = valid("{`name`:`ip-restriction`,`config`:{`allow`:`10.0.0.1`}}", SL_VALIDATE_FORM);
    equals(p, "config.allow", "[`10.0.0.1`]");
    json_decref(p);

    /* config.add.headers=x-a:1 and an empty config field from a form */
    p = valid("{`name`:`request-transformer`,`config`:{`add`:{`headers`:`x-a:1`},"
              "`http_method`:``},`consumer`:``}",
              SL_VALIDATE_FORM);
    equals(p, "config.add.headers", "[`x-a:1`]");
    json_decref(p);

    p = valid("{`name`:`http-log`,`config`:{`http_endpoint`:`http://a/`,`queue`:{"
              "`max_batch_size`:`10`,`initial_retry_delay`:`0.5`}}}",
              SL_VALIDATE_FORM);
    equals(p, "config.queue.max_batch_size", "10");
    number(p, "config.queue.initial_retry_delay", 0.5);
    json_decref(p);

    /* a key-auth with an empty consumer field from a form is not consumer-scoped */
    p = valid("{`name`:`key-auth`,`consumer`:``,`config`:``}", SL_VALIDATE_FORM);
    equals(p, "config.key_names", "[`apikey`]");
    json_decref(p);
}

static void test_redis_shorthands(void **state)
{
    /* Kong 3.0-3.5 exports list redis_* with their defaults, even for the local policy */
    json_t *p = valid("{`name`:`rate-limiting`,`config`:{`minute`:5,`policy`:`local`,"
                      "`redis_host`:null,`redis_port`:6379,`redis_timeout`:2000,"
                      "`redis_database`:0,`redis_ssl`:false,`redis_server_name`:`r.internal`}}",
                      SL_VALIDATE_JSON);
    equals(p, "config.redis.server_name", "`r.internal`");
    equals(p, "config.redis.timeout", "2000");
    assert_null(json_object_get(get(p, "config"), "redis_timeout"));
    assert_null(json_object_get(get(p, "config"), "redis_host"));
    json_decref(p);
}

static void test_scopes(void **state)
{
    const char *no_consumer[] = {"key-auth", "basic-auth", "acl", "cors"};
    for (size_t i = 0; i < sizeof no_consumer / sizeof *no_consumer; i++) {
        char text[256];
        snprintf(text, sizeof text,
                 "{`name`:`%s`,`consumer`:{`id`:`" UUID1 "`},`config`:{`allow`:[`g`]}}",
                 no_consumer[i]);
        if (strcmp(no_consumer[i], "acl") != 0)
            snprintf(text, sizeof text, "{`name`:`%s`,`consumer`:{`id`:`" UUID1 "`}}",
                     no_consumer[i]);
        invalid(text, SL_VALIDATE_JSON, "{`consumer`:`value must be null`}");
    }
    json_t *errors;
    int n;
    json_t *j =
        run("{`name`:`key-auth`,`consumer`:{`id`:`" UUID1 "`}}", SL_VALIDATE_JSON, &n, &errors);
    char *msg = sl_schema_violation_message(errors, n);
    assert_string_equal(msg, "schema violation (consumer: value must be null)");
    free(msg);
    json_decref(errors);
    json_decref(j);

    /* rate limits per consumer are what consumer scope is for */
    j = valid("{`name`:`rate-limiting`,`consumer`:{`id`:`" UUID1 "`},`route`:{`id`:`" UUID1
              "`},`config`:{`hour`:100}}",
              SL_VALIDATE_JSON);
    equals(j, "consumer.id", "`" UUID1 "`");
    json_decref(j);
    j = valid("{`name`:`key-auth`,`route`:{`id`:`" UUID1 "`},`service`:{`id`:`" UUID1 "`}}",
              SL_VALIDATE_JSON);
    json_decref(j);
}

static void test_protocols(void **state)
{
    invalid("{`name`:`key-auth`,`protocols`:[`http`,`tcp`]}", SL_VALIDATE_JSON,
            "{`protocols`:[null,`expected one of: grpc, grpcs, http, https`]}");
    json_t *p = valid("{`name`:`ip-restriction`,`protocols`:[`tcp`,`tls`],`config`:{`deny`:"
                      "[`10.0.0.0/8`]}}",
                      SL_VALIDATE_JSON);
    json_decref(p);
    p = valid("{`name`:`http-log`,`protocols`:[`tcp`],`config`:{`http_endpoint`:`http://a/`}}",
              SL_VALIDATE_JSON);
    json_decref(p);
    invalid("{`name`:`ip-restriction`,`protocols`:[`udp`],`config`:{`deny`:[`::1`]}}",
            SL_VALIDATE_JSON,
            "{`protocols`:[`expected one of: grpc, grpcs, http, https, tcp, tls`]}");
}

/* What the store saved, validated again (snapshot, PATCH): unchanged, for every plugin. */
static void test_revalidation_is_stable(void **state)
{
    static const char *const configs[] = {
        "{`name`:`key-auth`}",
        "{`name`:`basic-auth`}",
        "{`name`:`acl`,`config`:{`allow`:[`a`,`b`]}}",
        "{`name`:`rate-limiting`,`config`:{`second`:1,`redis_port`:6380}}",
        "{`name`:`ip-restriction`,`config`:{`allow`:[`::1`]}}",
        "{`name`:`cors`,`config`:{`origins`:[`https://a\\\\.example`]}}",
        "{`name`:`request-transformer`,`config`:{`replace`:{`uri`:`/x`}}}",
        "{`name`:`response-transformer`,`config`:{`add`:{`json`:[`a:1`]}}}",
        "{`name`:`request-size-limiting`}",
        "{`name`:`correlation-id`}",
        "{`name`:`prometheus`}",
        "{`name`:`http-log`,`config`:{`http_endpoint`:`http://a/`}}",
        "{`name`:`file-log`,`config`:{`path`:`/tmp/x.log`}}",
    };
    for (size_t i = 0; i < sizeof configs / sizeof *configs; i++) {
        json_t *once = valid(configs[i], SL_VALIDATE_JSON);
        json_t *twice = json_deep_copy(once), *errors;
        assert_int_equal(
            sl_schema_validate(sl_entity_by_name("plugins"), twice, SL_VALIDATE_JSON, &errors), 0);
        if (!json_equal(once, twice))
            fail_msg("%s changed on re-validation", configs[i]);
        json_decref(once);
        json_decref(twice);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_names_priorities_order),
        cmocka_unit_test(test_unknown_plugin),
        cmocka_unit_test(test_auth_defaults),
        cmocka_unit_test(test_rate_limiting_defaults),
        cmocka_unit_test(test_traffic_defaults),
        cmocka_unit_test(test_transformer_defaults),
        cmocka_unit_test(test_log_and_metrics_defaults),
        cmocka_unit_test(test_rate_limiting_refusals),
        cmocka_unit_test(test_acl_and_ip_refusals),
        cmocka_unit_test(test_other_refusals),
        cmocka_unit_test(test_http_log_refusals),
        cmocka_unit_test(test_form_coercion),
        cmocka_unit_test(test_redis_shorthands),
        cmocka_unit_test(test_scopes),
        cmocka_unit_test(test_protocols),
        cmocka_unit_test(test_revalidation_is_stable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
