// src/redis/unique_function.hpp
// Internal: a move-only, call-once function wrapper (std::move_only_function is
// C++23). It holds completion handlers, which cannot be copied. Boost 1.81's
// asio::any_completion_handler would fit, but its move assignment is broken
// (it wraps the source instead of taking it over), and containers assign.
#pragma once

#include <memory>
#include <type_traits>
#include <utility>

namespace spool::redis::detail {

template <class Signature>
class unique_function;

template <class... Args>
class unique_function<void(Args...)> {
public:
    unique_function() = default;
    template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, unique_function>>>
    unique_function(F&& f) : fn_{std::make_unique<holder<std::decay_t<F>>>(std::forward<F>(f))} {}

    unique_function(unique_function&&) noexcept = default;
    unique_function& operator=(unique_function&&) noexcept = default;

    explicit operator bool() const noexcept { return fn_ != nullptr; }

    // Calls the function once; it is empty afterwards.
    void operator()(Args... args) && {
        auto fn = std::move(fn_);
        fn->call(std::forward<Args>(args)...);
    }

private:
    struct base {
        virtual ~base() = default;
        virtual void call(Args... args) = 0;
    };
    template <class F>
    struct holder final : base {
        template <class G>
        explicit holder(G&& g) : f{std::forward<G>(g)} {}
        void call(Args... args) override { std::move(f)(std::forward<Args>(args)...); }
        F f;
    };
    std::unique_ptr<base> fn_;
};

}  // namespace spool::redis::detail
