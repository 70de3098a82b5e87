// A front end's test rig: a scratch directory, a Context for program with an
// empty config file, and a fresh store in which ours.example is a protected
// domain and friend@good.example is whitelisted (on PostgreSQL when the tests have a server: pg_rig.hpp).
#pragma once
#include "libmail/app/context.hpp"
#include "libmail/store/store.hpp"
#include "pg_rig.hpp"
#include "tmpdir.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <string>

struct StoreRig {
    TmpDir d;
    std::unique_ptr<mail::Context> ctx;
    std::unique_ptr<mail::Store> store;

    explicit StoreRig(const std::string& program) {
        mail::CommonOptions co;
        co.config = d.write("conf", "");
        co.db = test_store(d, "store.db");
        co.log = "none";
        auto c = mail::make_context(program, co, mail::fixed_env({{"HOME", d.path}}));
        REQUIRE(c);
        ctx = std::make_unique<mail::Context>(std::move(*c));
        auto s = ctx->open_store(mail::StoreUse::create);
        REQUIRE(s);
        store = std::move(*s);
        REQUIRE(store->domain_add("ours.example", 1));
        mail::WlEntry e;
        e.kind = mail::WlKind::address;
        e.value = "friend@good.example";
        REQUIRE(store->wl_insert(e));
    }
};
