// app/main.cpp
// `spool`: one binary, every role (serve, worker, bench, CLI client).
#include <cstdio>

int main() {
    std::puts("spool: nothing here yet");
    return 0;
}
