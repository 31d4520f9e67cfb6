// A miner's loop in C++ with libtorch and libbistro: train a tiny model for a
// few SGD steps, encode the weight change as a delta through the C API (top-k
// with error feedback for matrices, dense for biases), sign it, read it back,
// apply it to the starting weights and check that the result is the trained
// model up to what the encodings drop (and exactly, for dense f32).
//
// Built by scripts/test-ffi.sh with `c++ -std=c++17 -Wall -Wextra -Werror`
// against .deps/libtorch (scripts/setup-libtorch.sh) and libbistro.so.
// Prints "cpp: N passed, M failed" and exits non-zero on any failure.
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "bistro.h"

namespace {

int checks = 0;
int failures = 0;

void check(bool ok, const char *what, int line) {
    ++checks;
    if (!ok) {
        ++failures;
        std::fprintf(stderr, "test_bistro_torch.cpp:%d: check failed: %s\n", line, what);
    }
}
#define TEST_CHECK(cond) check((cond), #cond, __LINE__)

// Turns a failed status into an exception carrying the library's message.
void ok(bistro_status status, const char *what) {
    ++checks;
    if (status != BISTRO_OK) {
        ++failures;
        std::string message(bistro_last_error_length() + 1, '\0');
        bistro_last_error(message.data(), message.size());
        throw std::runtime_error(std::string(what) + ": " + bistro_status_name(status) + ": " +
                                 message.c_str());
    }
}
#define TEST_OK(expr) ok((expr), #expr)

// RAII owners for the library's handles.
struct WriterFree {
    void operator()(bistro_delta_writer *w) const { bistro_delta_writer_free(w); }
};
struct ReaderFree {
    void operator()(bistro_delta_reader *r) const { bistro_delta_reader_free(r); }
};
struct BufferFree {
    void operator()(bistro_buffer *b) const { bistro_buffer_free(b); }
};
using Writer = std::unique_ptr<bistro_delta_writer, WriterFree>;
using Reader = std::unique_ptr<bistro_delta_reader, ReaderFree>;
using Buffer = std::unique_ptr<bistro_buffer, BufferFree>;

// A contiguous f32 CPU copy of a tensor, as the C API takes it.
torch::Tensor flat(const torch::Tensor &t) {
    return t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
}

std::vector<uint64_t> shape_of(const torch::Tensor &t) {
    std::vector<uint64_t> shape;
    for (auto d : t.sizes()) shape.push_back(static_cast<uint64_t>(d));
    return shape;
}

double max_abs(const torch::Tensor &t) { return t.abs().max().item<double>(); }

void run() {
    torch::manual_seed(7);
    auto model = torch::nn::Sequential(torch::nn::Linear(16, 32), torch::nn::ReLU(),
                                       torch::nn::Linear(32, 4));
    std::map<std::string, torch::Tensor> start;
    for (const auto &p : model->named_parameters()) start[p.key()] = p.value().detach().clone();

    // A few SGD steps toward a random target.
    auto x = torch::randn({64, 16});
    auto y = torch::randn({64, 4});
    torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1));
    double first_loss = 0, last_loss = 0;
    for (int step = 0; step < 20; ++step) {
        sgd.zero_grad();
        auto loss = torch::mse_loss(model->forward(x), y);
        loss.backward();
        sgd.step();
        (step == 0 ? first_loss : last_loss) = loss.item<double>();
    }
    TEST_CHECK(last_loss < first_loss);

    // The miner's hotkey and the delta's header.
    uint8_t seed[BISTRO_SEED_LEN];
    for (size_t i = 0; i < sizeof seed; ++i) seed[i] = static_cast<uint8_t>(i * 13 + 1);
    bistro_delta_header header{};
    header.block = 1000;
    header.uid = 3;
    TEST_OK(bistro_public_key_from_seed(seed, header.hotkey));

    bistro_delta_writer *raw_writer = nullptr;
    TEST_OK(bistro_delta_writer_new(&header, nullptr, &raw_writer));
    Writer writer(raw_writer);

    // Matrices: top-k 25% in f16 with error feedback; biases: dense f32.
    std::map<std::string, torch::Tensor> deltas, residuals;
    for (const auto &p : model->named_parameters()) {
        const std::string &name = p.key();
        auto delta = flat(p.value()) - start[name];
        deltas[name] = delta.clone();
        auto shape = shape_of(delta);
        bistro_encoding enc{};
        float *residual = nullptr;
        if (delta.dim() == 2) {
            enc.kind = BISTRO_ENCODING_TOP_K;
            enc.dtype = BISTRO_DTYPE_F16;
            enc.k = static_cast<uint64_t>(delta.numel() / 4);
            residuals[name] = torch::zeros_like(delta);
            residual = residuals[name].data_ptr<float>();
        } else {
            enc.kind = BISTRO_ENCODING_DENSE;
            enc.dtype = BISTRO_DTYPE_F32;
        }
        TEST_OK(bistro_delta_writer_add_tensor(writer.get(), name.c_str(), shape.data(), shape.size(),
                                          delta.data_ptr<float>(),
                                          static_cast<size_t>(delta.numel()), &enc, residual));
    }
    bistro_buffer *raw_buffer = nullptr;
    uint8_t digest[BISTRO_DIGEST_LEN];
    TEST_OK(bistro_delta_writer_finish(writer.get(), seed, digest, &raw_buffer));
    Buffer buffer(raw_buffer);

    // The validator's side: open, verify, check, apply to the starting weights.
    bistro_delta_reader *raw_reader = nullptr;
    TEST_OK(bistro_delta_reader_open(bistro_buffer_data(buffer.get()), bistro_buffer_len(buffer.get()),
                                nullptr, &raw_reader));
    Reader reader(raw_reader);
    TEST_OK(bistro_delta_reader_verify_signature(reader.get()));
    TEST_OK(bistro_delta_reader_check_finite(reader.get()));
    size_t count = 0;
    TEST_OK(bistro_delta_reader_tensor_count(reader.get(), &count));
    TEST_CHECK(count == start.size());

    for (const auto &p : model->named_parameters()) {
        const std::string &name = p.key();
        size_t index = 0;
        TEST_OK(bistro_delta_reader_find(reader.get(), name.c_str(), &index));
        bistro_tensor_info info;
        TEST_OK(bistro_delta_reader_tensor_info(reader.get(), index, &info));
        TEST_CHECK(info.rank == static_cast<size_t>(p.value().dim()));
        TEST_CHECK(info.element_count == static_cast<uint64_t>(p.value().numel()));

        auto applied = start[name].clone();
        TEST_OK(bistro_delta_reader_apply(reader.get(), index, applied.data_ptr<float>(),
                                     static_cast<size_t>(applied.numel()), 1.0f));
        auto trained = flat(p.value());
        if (info.encoding.kind == BISTRO_ENCODING_DENSE) {
            // Dense f32: start + (trained - start), one rounding from trained.
            TEST_CHECK(torch::equal(applied, start[name] + deltas[name]));
            TEST_CHECK(max_abs(applied - trained) <= 1e-6 * (1.0 + max_abs(trained)));
        } else {
            // Top-k: a quarter of the elements changed; what was dropped is in
            // the residual, up to f16 rounding of the kept values.
            auto changed = (applied != start[name]).sum().item<int64_t>();
            TEST_CHECK(changed <= static_cast<int64_t>(info.encoding.k));
            TEST_CHECK(changed > 0);
            auto recovered = applied - start[name] + residuals[name];
            TEST_CHECK(max_abs(recovered - deltas[name]) <= max_abs(deltas[name]) / 1024.0 + 1e-7);
        }
    }

    // The applied model is close to the trained one on the training data.
    {
        torch::NoGradGuard no_grad;
        auto trained_loss = torch::mse_loss(model->forward(x), y).item<double>();
        for (auto &p : model->named_parameters()) {
            size_t index = 0;
            TEST_OK(bistro_delta_reader_find(reader.get(), p.key().c_str(), &index));
            auto w = start[p.key()].clone();
            TEST_OK(bistro_delta_reader_apply(reader.get(), index, w.data_ptr<float>(),
                                         static_cast<size_t>(w.numel()), 1.0f));
            p.value().copy_(w);
        }
        auto applied_loss = torch::mse_loss(model->forward(x), y).item<double>();
        TEST_CHECK(applied_loss < first_loss);
        TEST_CHECK(std::fabs(applied_loss - trained_loss) < 0.5 * (first_loss - trained_loss));
        std::printf("cpp: loss %.4f -> %.4f trained, %.4f with the delta applied\n", first_loss,
                    trained_loss, applied_loss);
    }
}

}  // namespace

int main() {
    TEST_CHECK(bistro_abi_version() == BISTRO_ABI_VERSION);
    try {
        run();
    } catch (const std::exception &e) {
        ++failures;
        std::fprintf(stderr, "test_bistro_torch: %s\n", e.what());
    }
    std::printf("cpp: %d passed, %d failed\n", checks - failures, failures);
    return failures == 0 ? 0 : 1;
}
