# Built by scripts/build-native.mjs, which passes the BLAS it found:
#   -Dfinetune_blas=openblas|accelerate|none  -Dfinetune_blas_include=DIR  -Dfinetune_blas_libdir=DIR  -Dfinetune_blas_rpath=DIR
{
  "variables": {
    "finetune_blas%": "none",
    "finetune_blas_include%": "",
    "finetune_blas_libdir%": "",
    "finetune_blas_rpath%": "",
  },
  "targets": [
    {
      "target_name": "finetune_matmul",
      "sources": [
        "src/addon.cc",
        "src/gemm.cc",
        "src/blas.cc",
        "src/gemv.cc",
        "src/gemv_avx2.cc",
        "src/packed.cc",
        "src/thread_pool.cc",
        "src/kernel_avx2.cc",
        "src/kernel_portable.cc",
        "src/weight_store.cc",
        "src/weight_ops.cc",
        "src/weight_kernels_portable.cc",
        "src/weight_kernels_avx2.cc",
        "src/weights_addon.cc",
        "src/decoder.cc",
        "src/decoder_addon.cc",
      ],
      "defines": ["NAPI_VERSION=8"],
      # Exceptions stay on inside the addon (std::thread and allocation report failure by throwing); addon.cc
      # catches them all before returning to Node.
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-pthread"],
      "ldflags": ["-pthread"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "MACOSX_DEPLOYMENT_TARGET": "11.0",
        "OTHER_CPLUSPLUSFLAGS": ["-O3"],
      },
      "msvs_settings": {
        "VCCLCompilerTool": {"ExceptionHandling": 1, "AdditionalOptions": ["/std:c++17", "/O2"]},
      },
      "conditions": [
        ["finetune_blas=='openblas'", {
          "defines": ["FINETUNE_OPENBLAS"],
          "libraries": ["-lopenblas"],
        }],
        ["finetune_blas=='openblas' and finetune_blas_include!=''", {
          "include_dirs": ["<(finetune_blas_include)"],
        }],
        ["finetune_blas=='openblas' and finetune_blas_libdir!=''", {
          "library_dirs": ["<(finetune_blas_libdir)"],
        }],
        ["finetune_blas=='openblas' and finetune_blas_rpath!=''", {
          "ldflags": ["-Wl,-rpath,<(finetune_blas_rpath)"],
        }],
        ["finetune_blas=='accelerate'", {
          # The classic CBLAS interface: ACCELERATE_NEW_LAPACK's symbols need macOS 13.3+.
          "defines": ["FINETUNE_ACCELERATE"],
          "libraries": ["-framework Accelerate"],
        }],
      ],
    },
  ],
}
