/*
 * Host port of ESP-IDF's esp_bt_main.h (components/bt/host/bluedroid/api/include/api/esp_bt_main.h,
 * v5.5.4): Bluedroid's init/enable/disable/deinit and status, implemented in src/esp_bt_main.c.
 * Left out: esp_bluedroid_get_example_name(), for ESP-IDF's own example CI only. The declarations
 * are ESP-IDF's (Apache-2.0, Espressif Systems).
 */
#ifndef __ESP_BT_MAIN_H__
#define __ESP_BT_MAIN_H__

#include <stdbool.h>
#include <stdint.h>

#include "esp_err.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief Bluetooth stack status type, to indicate whether the bluetooth stack is ready.
 */
typedef enum {
    ESP_BLUEDROID_STATUS_UNINITIALIZED   = 0,        /*!< Bluetooth stack is not initialized */
    ESP_BLUEDROID_STATUS_INITIALIZED,                /*!< Bluetooth stack is initialized but not yet enabled */
    ESP_BLUEDROID_STATUS_ENABLED,                    /*!< Bluetooth stack is fully initialized and enabled */
    ESP_BLUEDROID_STATUS_DISABLING                    /*!< Bluetooth stack is in the process of being disabled */
} esp_bluedroid_status_t;

/**
 * @brief Bluetooth stack configuration
 */
typedef struct {
    bool ssp_en; /*!< Whether SSP(secure simple pairing) or legacy pairing is used for Classic Bluetooth */
    bool sc_en; /*!< Whether secure connection host support is enabled or disabled for Classic Bluetooth */
} esp_bluedroid_config_t;

#define BT_BLUEDROID_INIT_CONFIG_DEFAULT()                                                                             \
    {                                                                                                                  \
        .ssp_en = true,                                                                                                \
        .sc_en = false,                                                                                                \
    }

/**
 * @brief     Get bluetooth stack status
 *
 * @return    Bluetooth stack status
 *
 */
esp_bluedroid_status_t esp_bluedroid_get_status(void);

/**
 * @brief     Enable bluetooth, must after esp_bluedroid_init()/esp_bluedroid_init_with_cfg().
 *
 * @return
 *            - ESP_OK : Succeed
 *            - Other  : Failed
 */
esp_err_t esp_bluedroid_enable(void);

/**
 * @brief     Disable Bluetooth, must be called prior to esp_bluedroid_deinit().
 *
 * @note      Before calling this API, ensure that all activities related to
 *            the application, such as connections, scans, etc., are properly closed.
 *
 * @return
 *            - ESP_OK : Succeed
 *            - Other  : Failed
 */
esp_err_t esp_bluedroid_disable(void);

/**
 * @brief     Init and alloc the resource for bluetooth, must be prior to every bluetooth stuff.
 *
 * @return
 *            - ESP_OK : Succeed
 *            - Other  : Failed
 */
esp_err_t esp_bluedroid_init(void);

/**
 * @brief     Init and alloc the resource for bluetooth, must be prior to every bluetooth stuff.
 *
 * @param cfg Initial configuration of ESP Bluedroid stack.
 *
 * @return
 *            - ESP_OK : Succeed
 *            - Other  : Failed
 */
esp_err_t esp_bluedroid_init_with_cfg(esp_bluedroid_config_t *cfg);

/**
 * @brief     Deinit and free the resource for bluetooth, must be after every bluetooth stuff.
 *
 * @return
 *            - ESP_OK : Succeed
 *            - Other  : Failed
 */
esp_err_t esp_bluedroid_deinit(void);

#ifdef __cplusplus
}
#endif

#endif /* __ESP_BT_MAIN_H__ */
