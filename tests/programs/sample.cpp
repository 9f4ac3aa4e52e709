// A C++ workload: operator new/delete in all their forms (sized, array,
// aligned, nothrow), standard containers and strings, and threads. Its
// output is deterministic; it checks alignment and contents itself.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

struct alignas(64) CacheLine {
    std::uint64_t words[8];
};

struct alignas(4096) Page {
    unsigned char bytes[4096];
};

static unsigned long checksum_words(const std::vector<std::string> &words)
{
    unsigned long sum = 0;
    for (const auto &w : words)
        for (unsigned char c : w)
            sum = sum * 131 + c;
    return sum;
}

static unsigned long worker(int id)
{
    std::map<std::string, std::vector<int>> index;
    std::vector<std::string> words;
    for (int i = 0; i < 20000; i++) {
        std::string w = "w" + std::to_string((i * 7919 + id) % 5003);
        index[w].push_back(i);
        words.push_back(w + std::string(static_cast<std::size_t>(i % 40), 'x'));
    }
    std::sort(words.begin(), words.end());
    std::unordered_map<int, std::unique_ptr<CacheLine>> lines;
    for (int i = 0; i < 5000; i++) {
        auto line = std::make_unique<CacheLine>();
        if (reinterpret_cast<std::uintptr_t>(line.get()) % 64 != 0) {
            std::printf("misaligned CacheLine\n");
            std::exit(1);
        }
        line->words[0] = static_cast<std::uint64_t>(i);
        lines[i] = std::move(line);
    }
    unsigned long sum = checksum_words(words) + index.size();
    for (auto &kv : lines)
        sum += kv.second->words[0];
    return sum;
}

int main()
{
    std::vector<Page *> pages;
    for (int i = 0; i < 64; i++) {
        Page *p = new Page;
        if (reinterpret_cast<std::uintptr_t>(p) % 4096 != 0) {
            std::printf("misaligned Page\n");
            return 1;
        }
        p->bytes[0] = static_cast<unsigned char>(i);
        pages.push_back(p);
    }
    int *array = new int[100000]();
    char *nothrow_block = new (std::nothrow) char[1 << 20];
    if (!nothrow_block)
        return 1;
    std::vector<std::thread> threads;
    std::vector<unsigned long> results(4);
    for (int t = 0; t < 4; t++)
        threads.emplace_back([t, &results] { results[static_cast<std::size_t>(t)] = worker(t); });
    for (auto &th : threads)
        th.join();
    for (int t = 0; t < 4; t++)
        std::printf("worker %d: %lu\n", t, results[static_cast<std::size_t>(t)]);
    unsigned long page_sum = 0;
    for (Page *p : pages) {
        page_sum += p->bytes[0];
        delete p;
    }
    std::printf("pages %lu, array %d\n", page_sum, array[99999]);
    delete[] array;
    delete[] nothrow_block;
    return 0;
}
