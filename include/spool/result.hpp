// include/spool/result.hpp
// The value-or-error type every fallible Spool call returns. The error side is a
// boost::system::error_code, usually one of spool::errc (see error.hpp).
#pragma once

#include <boost/system/result.hpp>

namespace spool {

template <class T>
using result = boost::system::result<T>;

}  // namespace spool
